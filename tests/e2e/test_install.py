"""packaging/install.sh twice is harmless; uninstall.sh reverses it and keeps configs and state
unless --purge."""
from __future__ import annotations

from gridbot_testsupport import sdbox

from .conftest import paper_config


def test_install_twice_then_uninstall_then_purge(wheels):
    box = sdbox.Box(accounting=False).boot()
    try:
        box.install(wheels)
        box.put("/etc/gridbot/keep_me.json", paper_config())
        box.gridbot("start", "keep_me", check=True)
        pid = box.show("gridbot@keep_me.service", "MainPID")["MainPID"]
        box.install(wheels)  # again: nothing breaks, the running bot is left alone
        assert box.show("gridbot@keep_me.service", "MainPID", "ActiveState") == {"MainPID": pid, "ActiveState": "active"}
        # one group shared by the instances (each runs as its own dynamic user), no static user
        assert box.run(["grep", "-c", "^gridbot:", "/etc/group"]).stdout.strip() == "1"
        assert box.run(["grep", "-c", "^gridbot:", "/etc/passwd"]).stdout.strip() == "0"
        assert box.run(["getent", "group", "gridbot-ops"]).returncode == 0
        assert box.sh("stat -c %a /etc/gridbot/credentials", check=True).stdout.strip() == "700"
        assert box.run(["test", "-e", "/etc/polkit-1/rules.d/50-gridbot.rules"]).returncode == 0
        assert "/opt/gridbot/bin/gridbot" in box.run(["readlink", "/usr/local/bin/gridbot"]).stdout

        r = box.run([str(sdbox.ROOT / "packaging" / "uninstall.sh")])
        assert r.returncode == 0, r.stderr
        assert "kept" in r.stdout
        for gone in ("/etc/systemd/system/gridbot@.service", "/etc/systemd/system/gridbot.target",
                     "/opt/gridbot", "/usr/local/bin/gridbot", "/etc/polkit-1/rules.d/50-gridbot.rules"):
            assert box.run(["test", "-e", gone]).returncode != 0, gone
        assert box.run(["systemctl", "is-active", "gridbot@keep_me.service"]).stdout.strip() != "active"
        assert box.run(["test", "-f", "/etc/gridbot/keep_me.json"]).returncode == 0
        assert box.run(["test", "-d", "/var/lib/gridbot/keep_me"]).returncode == 0

        box.install(wheels)  # comes back with the kept config and state
        box.gridbot("start", "keep_me", check=True)
        r = box.run([str(sdbox.ROOT / "packaging" / "uninstall.sh"), "--purge"])
        assert r.returncode == 0, r.stderr
        for gone in ("/etc/gridbot", "/var/lib/gridbot"):
            assert box.run(["test", "-e", gone]).returncode != 0, gone
        assert box.run(["getent", "passwd", "gridbot"]).returncode != 0
        assert box.run(["getent", "group", "gridbot"]).returncode != 0
        assert box.run(["test", "-e", "/var/lib/private/gridbot"]).returncode != 0
        r = box.run([str(sdbox.ROOT / "packaging" / "uninstall.sh"), "--bogus"])
        assert r.returncode == 2
    finally:
        box.poweroff()


def test_install_refuses_non_root(box):
    r = box.run([str(sdbox.ROOT / "packaging" / "install.sh")], user="op")
    assert r.returncode == 4 and "must run as root" in r.stderr
