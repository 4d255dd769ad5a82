"""A gridbot-ops member (polkit) may start/stop/restart gridbot@ units, and nothing else."""
from __future__ import annotations


def test_ops_member_can_restart_but_not_more(box, make_instance):
    make_instance("perm_a")
    box.gridbot("start", "perm_a", check=True)
    pid = box.show("gridbot@perm_a.service", "MainPID")["MainPID"]
    r = box.gridbot("restart", "perm_a", user="op")
    assert r.returncode == 0, r.stderr
    assert box.show("gridbot@perm_a.service", "MainPID")["MainPID"] not in ("0", pid)
    assert box.gridbot("stop", "perm_a", user="op").returncode == 0
    assert box.gridbot("start", "perm_a", user="op").returncode == 0
    assert box.gridbot("list", user="op").returncode == 0
    # enable/disable stay root-only
    r = box.gridbot("enable", "perm_a", user="op")
    assert r.returncode == 4 and "permission denied" in r.stderr and "sudo" in r.stderr
    assert box.run(["systemctl", "is-enabled", "gridbot@perm_a.service"]).stdout.strip() == "disabled"
    # another service: denied for the operator
    r = box.run(["systemctl", "restart", "systemd-journald.service"], user="op")
    assert r.returncode != 0
    # outsiders get nothing
    r = box.gridbot("restart", "perm_a", user="outsider")
    assert r.returncode == 4 and "permission denied" in r.stderr and "Traceback" not in r.stderr


def test_ops_member_cannot_touch_other_units_over_dbus(box):
    code = ("import sys; from gridbot.systemd import Manager\n"
            "from gridbot.errors import PermissionDenied\n"
            "with Manager() as m:\n"
            "    try:\n"
            "        m.run_jobs('RestartUnit', ['systemd-journald.service'])\n"
            "    except PermissionDenied:\n"
            "        sys.exit(42)\n")
    r = box.run(["/opt/gridbot/bin/python", "-c", code], user="op")
    assert r.returncode == 42, r.stderr
