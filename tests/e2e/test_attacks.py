"""Issue 10: an attacker on the installed host (root operator, a gridbot-ops member `op`, an
unrelated local user `outsider`), against a real systemd. Each test checks what must not happen."""
from __future__ import annotations

import json
import re
import time

from .conftest import paper_config, wait_for
from .test_bad_input import assert_clean_error, snapshot


def active(box, name) -> str:
    return box.run(["systemctl", "is-active", f"gridbot@{name}.service"]).stdout.strip()


def journal(box, unit: str) -> str:
    return box.run(["journalctl", "-q", "--no-pager", "-o", "cat", "-u", unit]).stdout


# -- 1, 13: start -c reads once, installs exactly what it checked --------------------------------
RACE = r'''
import json, os, subprocess, sys, time
d, n, good = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
out = []
for i in range(n):
    t0 = time.monotonic()
    try:
        r = subprocess.run(["/usr/local/bin/gridbot", "start", "--force", "--timeout", "20", "-c", f"{d}/race_sw.json"],
                           capture_output=True, text=True, timeout=25, stdin=subprocess.DEVNULL)
        code, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        code, err = "hang", ""
    try:
        with open("/etc/gridbot/race_sw.json", "rb") as f:
            installed = f.read()
        st = os.lstat("/etc/gridbot/race_sw.json")
        kind = "reg" if (st.st_mode & 0o170000) == 0o100000 else "other"
    except FileNotFoundError:
        installed, kind = None, "none"
    out.append([code, err, installed == good if installed is not None else None, kind, round(time.monotonic() - t0, 2)])
print(json.dumps(out))
'''

SWAPPER = r'''
import os, sys, time
d, good = sys.argv[1], sys.argv[2].encode()
end = time.monotonic() + float(sys.argv[3])
i = 0
while time.monotonic() < end:
    tmp = f"{d}/.new{i % 3}"
    for p in (tmp,):
        try: os.unlink(p)
        except FileNotFoundError: pass
    if i % 3 == 0:
        with open(tmp, "wb") as f: f.write(good)
    elif i % 3 == 1:
        os.mkfifo(tmp)
    else:
        os.symlink("/etc/shadow", tmp)
    os.rename(tmp, f"{d}/race_sw.json")
    i += 1
    time.sleep(0.0005)
'''


def test_start_c_race_installs_only_validated_bytes_and_never_hangs(box):
    """outsider swaps the file between a valid config, a FIFO and a symlink to /etc/shadow while
    root runs `start -c` on it, again and again: only the validated bytes are ever installed."""
    good = paper_config(low=100, high=200)
    d = "/home/outsider/race"
    box.run(["mkdir", "-p", d], user="outsider", check=True)
    box.put("/tmp/race.py", RACE)
    box.put("/tmp/swapper.py", SWAPPER)
    box.run(["cp", "/tmp/swapper.py", f"{d}/swapper.py"], check=True)
    box.run(["chmod", "0644", f"{d}/swapper.py"], check=True)
    try:
        box.sh(f"setpriv --reuid=$(id -u outsider) --regid=$(id -g outsider) --init-groups "
               f"/opt/gridbot/bin/python {d}/swapper.py {d} '{good}' 90 >/dev/null 2>&1 & echo $! > /root/swapper.pid",
               check=True)
        res = box.run(["/opt/gridbot/bin/python", "/tmp/race.py", d, "40", good], timeout=600, check=True)
        results = json.loads(res.stdout)
        codes = [r[0] for r in results]
        assert "hang" not in codes, results
        for code, err, same, kind, _secs in results:
            assert same in (True, None), (code, err)  # never anything but the validated bytes
            assert kind in ("reg", "none")
            if code != 0:
                assert code in (2, 6) and err.startswith("gridbot: error:") and len(err.strip().splitlines()) == 1, err
                assert "root:" not in err
        assert any(c == 0 for c in codes), results  # the race was really run against valid bytes too
        assert any(c == 6 and ("symlink" in e or "not a regular file" in e) for c, e, *_ in results), results
        shown = box.run(["cat", "/etc/gridbot/race_sw.json"], check=True).stdout
        assert shown == good and "root:" not in shown
        assert box.run(["stat", "-c", "%a %U", "/etc/gridbot/race_sw.json"], check=True).stdout.split() == ["644", "root"]
    finally:
        box.sh("kill $(cat /root/swapper.pid); systemctl stop gridbot@race_sw.service; "
               "systemctl reset-failed gridbot@race_sw.service; rm -f /etc/gridbot/race_sw.json", timeout=60)


def test_start_force_c_of_a_running_instance_says_restart_needed(box, make_instance):
    name = make_instance("run_force", low=100, high=200)
    box.gridbot("start", name, check=True)
    pid = box.show(f"gridbot@{name}.service", "MainPID")["MainPID"]
    box.put(f"/root/{name}.json", paper_config(low=100, high=200, levels=12))
    r = box.gridbot("start", "--force", "-c", f"/root/{name}.json")
    assert r.returncode == 0, r.stderr
    assert "applies after a restart" in r.stdout and f"{name}: started" not in r.stdout, r.stdout
    assert box.show(f"gridbot@{name}.service", "MainPID")["MainPID"] == pid  # still the old bot
    assert json.loads(box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout)["levels"] == 12


# -- 2: a refused command changes nothing ---------------------------------------------------------
def test_refused_start_c_installs_nothing_and_the_fleet_still_starts(box, make_instance):
    make_instance("clash_old", paper_config(web_port=9311))
    box.put("/root/clash_new.json", paper_config(web_port=9311))
    box.put("/root/bad_new.json", paper_config(levels=1))
    before = snapshot(box)
    for f, code, needle in (("clash_new", 6, "web_port 9311"), ("bad_new", 6, "levels")):
        r = box.gridbot("start", "-c", f"/root/{f}.json")
        assert_clean_error(r, code)
        assert needle in r.stderr
        assert box.run(["test", "-e", f"/etc/gridbot/{f}.json"]).returncode != 0
    assert snapshot(box) == before
    r = box.gridbot("start", "clash_old")  # not poisoned by the refused file
    assert r.returncode == 0, r.stderr
    r = box.gridbot("restart", "--all")
    assert r.returncode == 0, r.stderr


# -- 3: what was checked is what the bot reads -----------------------------------------------------
EDITOR = """#!/bin/sh
sed -i "s/\\"levels\\": [0-9]*/\\"levels\\": $LEVELS/" "$1"
"""


def test_config_the_bot_cannot_read_is_refused_and_edit_is_safe(box, make_instance):
    name = make_instance("umask_cfg")
    box.sh(f"chmod 0600 /etc/gridbot/{name}.json", check=True)
    for verb in ("validate", "start"):
        r = box.gridbot(verb, name)
        assert_clean_error(r, 6)
        assert "cannot read it" in r.stderr and "chmod 0644" in r.stderr
    assert active(box, name) == "inactive"
    box.sh(f"chmod 0644 /etc/gridbot/{name}.json", check=True)
    assert box.gridbot("start", name).returncode == 0
    box.put("/root/ed.sh", EDITOR, mode="0755")
    before = box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout
    r = box.gridbot("edit", name, env={"EDITOR": "/root/ed.sh", "LEVELS": "1"})
    assert_clean_error(r, 6)
    assert "levels" in r.stderr and "unchanged" in r.stderr
    assert box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout == before
    r = box.gridbot("edit", name, env={"EDITOR": "/root/ed.sh", "LEVELS": "12"})
    assert r.returncode == 0 and "config updated" in r.stdout, r.stderr
    assert json.loads(box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout)["levels"] == 12
    assert box.run(["stat", "-c", "%a", f"/etc/gridbot/{name}.json"], check=True).stdout.strip() == "644"
    r = box.gridbot("restart", name)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: active(box, name) == "active", what="active after restart")
    # an operator could never install the result: refused before the editor opens, naming the right
    r = box.gridbot("edit", name, user="op", env={"EDITOR": "/usr/bin/touch /tmp/edited"})
    assert_clean_error(r, 4)
    assert "need root (sudo)" in r.stderr and box.run(["test", "-e", "/tmp/edited"]).returncode != 0


# -- 4: polkit grants exactly gridbot's names; --all skips foreign units -------------------------
def test_polkit_refuses_names_gridbot_refuses_and_all_commands_skip_them(box, make_instance):
    for unit in ("gridbot@--help.service", "gridbot@x.y.service", f"gridbot@{'a' * 24}.service"):
        r = box.run(["systemctl", "--no-ask-password", "start", unit], user="op")
        assert r.returncode != 0 and ("denied" in r.stderr.lower() or "interactive authentication" in r.stderr.lower()), (unit, r.stderr)
    ok = make_instance("pk_ok")
    assert box.run(["systemctl", "--no-ask-password", "start", f"gridbot@{ok}.service"], user="op").returncode == 0
    # root loads one anyway (a unit gridbot would never name): fleet-wide commands skip it, by name
    box.run(["systemctl", "start", "gridbot@--help.service"])
    try:
        assert "gridbot@--help.service" in box.run(["systemctl", "list-units", "--all", "--plain", "gridbot@*"]).stdout
        # stop --all last: one job on gridbot.target, which reaches (and so unloads) the foreign unit too
        for args in (["restart", "--all"], ["cleanup", "--yes"], ["stop", "--all"]):
            r = box.gridbot(*args)
            assert r.returncode == 0, (args, r.stderr)
            if args[0] == "stop":  # one job on gridbot.target (stop --all since issue 12): named, never reported as stopped
                assert "not reporting 'gridbot@--help.service': not a name gridbot accepts" in r.stderr, r.stderr
                assert "--help" not in r.stdout, r.stdout
            else:
                assert "skipping 'gridbot@--help.service'" in r.stderr, (args, r.stderr)
        assert active(box, ok) == "inactive"  # stop --all still stopped the real one
    finally:
        box.run(["systemctl", "stop", "gridbot@--help.service"])
        box.run(["systemctl", "reset-failed", "gridbot@--help.service", "gridbot-alert@--help.service"])
    for args in (["--help"], ["--check", "--help"], ["--check", "x.y"], ["a", "b"]):
        r = box.run(["/opt/gridbot/bin/python", "-m", "gridbot.alert", *args])
        assert r.returncode == 2 and "refusing to alert" in r.stdout, (args, r.stdout)


# -- 5: the alert hook ----------------------------------------------------------------------------
HOOK = """#!/bin/sh
echo "attack hook ran for [$1] as uid $(id -u), $# args"
"""


def test_alert_only_when_failed_for_good_unprivileged_with_a_checked_name(box, make_instance):
    box.put("/etc/gridbot/alert", HOOK, mode="0755")
    cfg78, once = make_instance("al_cfg78"), make_instance("al_once")
    try:
        # a refused config (exit 78): failed for good, alert
        box.put(f"/etc/systemd/system/gridbot@{cfg78}.service.d/90-test.conf",
                "[Service]\nExecStart=\nExecStart=/bin/sh -c 'exit 78'\n")
        # one failed run that systemd will not restart and that is not a start limit: no alert
        box.put(f"/etc/systemd/system/gridbot@{once}.service.d/90-test.conf",
                "[Service]\nExecStart=\nExecStart=/bin/sh -c 'exit 3'\nRestart=no\n")
        box.run(["systemctl", "daemon-reload"], check=True)
        box.run(["systemctl", "start", f"gridbot@{cfg78}.service", f"gridbot@{once}.service"])
        wait_for(lambda: "attack hook ran" in journal(box, f"gridbot-alert@{cfg78}.service"), what="alert for 78")
        a = journal(box, f"gridbot-alert@{cfg78}.service")
        m = re.search(r"attack hook ran for \[(.*)\] as uid (\d+), (\d+) args", a)
        assert m and m.group(1) == cfg78 and m.group(3) == "1" and int(m.group(2)) != 0, a
        assert f"gridbot instance {cfg78} FAILED" in a
        wait_for(lambda: "not failed for good" in journal(box, f"gridbot-alert@{once}.service"), what="no-alert note")
        b = journal(box, f"gridbot-alert@{once}.service")
        assert "attack hook ran" not in b and "FAILED" not in b, b
        # a hook others may write is not run
        box.sh("chmod 0777 /etc/gridbot/alert", check=True)
        box.run(["systemctl", "reset-failed", f"gridbot@{cfg78}.service", f"gridbot-alert@{cfg78}.service"])
        box.run(["systemctl", "start", f"gridbot@{cfg78}.service"])
        wait_for(lambda: "not run" in journal(box, f"gridbot-alert@{cfg78}.service"), what="unsafe hook refused")
        # the operator's documented opt-in: the hook as root
        box.sh("chmod 0755 /etc/gridbot/alert", check=True)
        box.put("/etc/systemd/system/gridbot-alert@.service.d/root.conf", "[Service]\nDynamicUser=no\nUser=root\n")
        box.run(["systemctl", "daemon-reload"], check=True)
        box.run(["systemctl", "reset-failed", f"gridbot@{cfg78}.service", f"gridbot-alert@{cfg78}.service"])
        box.run(["systemctl", "start", f"gridbot@{cfg78}.service"])
        wait_for(lambda: f"attack hook ran for [{cfg78}] as uid 0" in journal(box, f"gridbot-alert@{cfg78}.service"),
                 what="hook as root after opting in")
    finally:
        box.sh(f"rm -rf /etc/gridbot/alert /etc/systemd/system/gridbot-alert@.service.d "
               f"/etc/systemd/system/gridbot@{cfg78}.service.d "
               f"/etc/systemd/system/gridbot@{once}.service.d; systemctl daemon-reload; "
               f"systemctl reset-failed gridbot@{cfg78}.service gridbot@{once}.service gridbot-alert@{cfg78}.service "
               f"gridbot-alert@{once}.service")


# -- 6, 8, 11: per-instance identity, no core dumps, one bot per state -----------------------------
def test_instances_cannot_read_each_other_and_hold_no_core_dumps(box, make_instance):
    a, b = make_instance("iso_a"), make_instance("iso_b")
    r = box.gridbot("start", a, b)
    assert r.returncode == 0, r.stderr
    pa = box.show(f"gridbot@{a}.service", "MainPID")["MainPID"]
    pb = box.show(f"gridbot@{b}.service", "MainPID")["MainPID"]
    ua = box.run(["stat", "-c", "%u", f"/proc/{pa}"], check=True).stdout.strip()
    ub = box.run(["stat", "-c", "%u", f"/proc/{pb}"], check=True).stdout.strip()
    assert ua != ub and "0" not in (ua, ub)
    assert box.run(["test", "-f", f"/var/lib/gridbot/{b}/gridbot.sqlite"]).returncode == 0
    # as bot a's uid (and the shared group), b's database is out of reach
    r = box.sh(f"setpriv --reuid={ua} --regid=$(getent group gridbot | cut -d: -f3) --clear-groups "
               f"cat /var/lib/gridbot/{b}/gridbot.sqlite")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    # and inside a's own sandbox, b's state does not even exist
    r = box.run(["nsenter", "-t", pa, "-m", "ls", "/var/lib/private/gridbot"])
    assert b not in r.stdout.split(), r.stdout
    limits = box.run(["cat", f"/proc/{pa}/limits"], check=True).stdout
    assert re.search(r"Max core file size\s+0\s+0", limits), limits
    # 11: by hand while the service runs: refused (state locked), nothing written into the cwd
    r = box.sh(f"mkdir -p /root/cwd && cd /root/cwd && /usr/local/bin/gridbot run {a}", timeout=30)
    assert r.returncode == 1 and "locked by another process" in r.stderr and f"gridbot stop {a}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert box.run(["ls", "-A", "/root/cwd"], check=True).stdout == ""
    r = box.sh(f"cd /home/outsider && /usr/local/bin/gridbot run {a}", user="outsider", timeout=30)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "unusable" in r.stderr, r.stderr
    assert box.run(["test", "-e", "/home/outsider/state"]).returncode != 0
    assert active(box, a) == "active"
    # stopped: by hand as root is still refused (root would leave files the service's user cannot write)
    box.gridbot("stop", a, check=True)
    r = box.sh(f"cd /root/cwd && /usr/local/bin/gridbot run {a}", timeout=30)
    assert r.returncode == 1 and "belongs to its service user" in r.stderr, r.stderr
    assert box.run(["ls", "-A", "/root/cwd"], check=True).stdout == ""
    assert box.gridbot("start", a).returncode == 0


# -- 8, 9: secrets on the command line, credentials for paper ---------------------------------------
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="


def test_stray_secret_never_echoed_and_paper_gets_no_credentials(box, make_instance):
    name = make_instance("paper_nokeys")
    for user in (None, "op", "outsider"):
        for args in (["credentials", "set", name, SECRET], ["credentials", "set", SECRET], ["start", SECRET],
                     ["stop", f"--key={SECRET}"], [SECRET]):
            r = box.gridbot(*args, user=user)
            assert r.returncode == 2 and SECRET not in r.stdout + r.stderr and SECRET[:16] not in r.stderr, (args, r.stderr)
    before = snapshot(box)
    r = box.gridbot("credentials", "set", name, input='{"api_key": "x", "api_secret": "y"}')
    assert_clean_error(r, 6)
    assert "paper instance" in r.stderr
    assert snapshot(box) == before
    assert box.run(["test", "-e", f"/etc/systemd/system/gridbot@{name}.service.d/50-live.conf"]).returncode != 0
    assert box.run(["sh", "-c", f"ls /etc/gridbot/credentials/{name}.*"]).returncode != 0
    box.put("/root/http_live.json", json.dumps({**json.loads(paper_config()), "exchange": "backpack",
                                                "backpack": {"base_url": "http://api.backpack.exchange"}}))
    r = box.gridbot("validate", "-c", "/root/http_live.json")
    assert_clean_error(r, 6)
    assert "base_url" in r.stderr and "https" in r.stderr


# -- 10: the status port under a local user's flood ----------------------------------------------------
FLOOD = r'''
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end, n = time.monotonic() + secs, 0
held = []
while time.monotonic() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        s.setblocking(False)
        try:
            s.send([b"GET /api/status HT", b"\x00\xff" * 3000, b"POST / HTTP/1.1\r\n\r\n", b""][n % 4])
        except OSError:
            pass
        held.append(s) if n % 4 == 3 else s.close()
        held = held[-200:]
        n += 1
    except OSError:
        time.sleep(0.001)
print(n)
'''


def test_status_port_flood_neither_stalls_trading_nor_floods_the_journal(box, make_instance):
    name = make_instance("web_flood", web_port=9377)
    r = box.gridbot("start", name)
    assert r.returncode == 0, r.stderr
    get = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"
    status = json.loads(box.run(["/opt/gridbot/bin/python", "-c", get, "http://127.0.0.1:9377/api/status"],
                                user="outsider", check=True).stdout)
    assert status["symbol"] == "SOL_USDC" and "balances" not in status
    head = box.run(["/opt/gridbot/bin/python", "-c",
                    "import socket; s = socket.create_connection(('127.0.0.1', 9377)); "
                    "s.sendall(b'HEAD /api/status HTTP/1.1\\r\\n\\r\\n'); import time; time.sleep(0.5); "
                    "print(repr(s.recv(65536)))"], check=True).stdout
    assert "200 OK" in head and head.strip().endswith("\\r\\n\\r\\n'"), head
    lines_before = len(journal(box, f"gridbot@{name}.service").splitlines())
    loop_before = status["last_loop"]
    box.put("/tmp/flood.py", FLOOD)
    r = box.run(["/opt/gridbot/bin/python", "/tmp/flood.py", "9377", "8"], user="outsider", timeout=60)
    assert int(r.stdout) > 100, r.stdout + r.stderr  # the backlog is small: a flood mostly waits
    after = json.loads(box.run(["/opt/gridbot/bin/python", "-c", get, "http://127.0.0.1:9377/api/status"],
                               check=True).stdout)
    assert after["healthy"] and after["last_loop"] > loop_before + 5  # the loop kept turning through the flood
    assert active(box, name) == "active" and box.show(f"gridbot@{name}.service", "NRestarts")["NRestarts"] == "0"
    new_lines = journal(box, f"gridbot@{name}.service").splitlines()[lines_before:]
    assert len(new_lines) < 30 and not [ln for ln in new_lines if re.search(r"Traceback|rror|xception", ln)], new_lines


# -- 12: the disk fills while the bot trades -----------------------------------------------------------
def test_disk_full_while_running_stops_trading_applies_on_stop_one_line(box, make_instance):
    name = make_instance("full_run", text=paper_config(on_stop="cancel", paper={
        "price": {"start_price": 150, "interval_s": 0.05, "volatility": 0.01}}))
    real = f"/var/lib/private/gridbot/{name}"
    box.sh(f"mkdir -p {real} && mount -t tmpfs -o size=2M,mode=0700 tmpfs {real}", check=True)
    try:
        r = box.gridbot("start", name)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: " orders | " in box.show(f"gridbot@{name}.service", "StatusText")["StatusText"],
                 what="trading")
        box.sh(f"dd if=/dev/zero of={real}/filler bs=4k 2>/dev/null; true")  # the disk is now full
        wait_for(lambda: "stopped placing orders" in journal(box, f"gridbot@{name}.service"), timeout=60,
                 what="the bot noticed the full disk")
        log = journal(box, f"gridbot@{name}.service")
        line = next(ln for ln in log.splitlines() if "stopped placing orders" in ln)
        assert "full" in line and "on_stop=cancel: cancelled" in line, line
        assert "Traceback" not in log
    finally:
        box.sh(f"systemctl stop gridbot@{name}.service; systemctl reset-failed gridbot@{name}.service; "
               f"umount {real}; rm -rf {real}", timeout=60)


def test_state_of_the_old_static_user_moves_to_the_instances_own_user(box, make_instance):
    """An install from before DynamicUser= left /var/lib/gridbot/NAME owned by the static user:
    the first start moves it under /var/lib/private and hands it to the instance's own user."""
    name = make_instance("upgraded")
    box.sh(f"id olduser >/dev/null 2>&1 || useradd -r olduser; rm -rf /var/lib/gridbot/{name} "
           f"/var/lib/private/gridbot/{name}; mkdir -p /var/lib/gridbot/{name}; "
           f"echo kept > /var/lib/gridbot/{name}/marker; chown -R olduser: /var/lib/gridbot/{name}; "
           f"chmod 700 /var/lib/gridbot/{name}", check=True)
    try:
        r = box.gridbot("start", name)
        assert r.returncode == 0, r.stderr
        pid = box.show(f"gridbot@{name}.service", "MainPID")["MainPID"]
        uid = box.run(["stat", "-c", "%u", f"/proc/{pid}"], check=True).stdout.strip()
        assert box.run(["readlink", f"/var/lib/gridbot/{name}"], check=True).stdout.strip() == f"../private/gridbot/{name}"
        assert box.run(["cat", f"/var/lib/gridbot/{name}/marker"], check=True).stdout.strip() == "kept"
        owners = box.sh(f"stat -c %u /var/lib/private/gridbot/{name}/* | sort -u", check=True).stdout.split()
        assert owners == [uid], owners
    finally:
        box.sh(f"systemctl stop gridbot@{name}.service; rm -rf /var/lib/gridbot/{name} /var/lib/private/gridbot/{name}",
               timeout=60)
