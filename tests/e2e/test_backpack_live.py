"""A live (backpack) instance in the real systemd: keys only through systemd credentials, trading
against the fake Backpack server (base_url points at it), never in argv, environment or journal."""
from __future__ import annotations

import json
import time

from gridbot_testsupport import free_port

from .conftest import keypair, start_fake_backpack

PORT = free_port()


def live_config() -> str:
    # inside the fake's (Backpack's) price band at 150: 0.75 × 150 .. 1.25 × 150
    return json.dumps({"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 120, "upper_price": 180,
                       "levels": 10, "qty_per_level": 0.1,
                       "backpack": {"base_url": f"http://127.0.0.1:{PORT}", "poll_interval_s": 0.5}})


def fake_state(box) -> dict:
    out = box.run(["/opt/gridbot/bin/python", "-c",
                   f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{PORT}/_state').read().decode())"],
                  check=True).stdout
    return json.loads(out)


def test_live_instance_gets_keys_from_credentials_only(box):
    api_key, api_secret = keypair()
    start_fake_backpack(box, "fakebp", PORT, api_key, "/root/fake-setup.json")
    box.put("/etc/gridbot/bpx.json", live_config())
    try:
        # no credentials yet: refused before anything starts
        r = box.gridbot("start", "bpx")
        assert r.returncode == 6 and "credentials set bpx" in r.stderr
        assert box.run(["systemctl", "is-active", "gridbot@bpx.service"]).stdout.strip() == "inactive"

        # keys arrive on stdin, never argv
        r = box.gridbot("credentials", "set", "bpx", input=json.dumps({"api_key": api_key, "api_secret": api_secret}))
        assert r.returncode == 0, r.stderr
        stored = box.sh("ls -l /etc/gridbot/credentials/", check=True).stdout
        assert "bpx.cred" in stored and "-rw-------" in stored and "root root" in stored
        assert api_secret not in box.sh("cat /etc/gridbot/credentials/bpx.cred", check=True).stdout  # encrypted
        dropin = box.sh("cat /etc/systemd/system/gridbot@bpx.service.d/50-live.conf", check=True).stdout
        assert "LoadCredentialEncrypted=backpack:/etc/gridbot/credentials/bpx.cred" in dropin
        assert json.loads(box.gridbot("info", "bpx", "--json", check=True).stdout)["credentials"] == "present"

        r = box.gridbot("start", "bpx")
        assert r.returncode == 0, r.stderr + box.gridbot("logs", "bpx", "-n", "30").stdout

        # READY=1 came after the grid was placed on the (fake) exchange with signed requests
        status = box.show("gridbot@bpx.service", "StatusText", "ActiveState", "MainPID")
        assert status["ActiveState"] == "active", status
        venue = fake_state(box)
        assert len(venue["open_orders"]) >= 8, venue
        assert {o["side"] for o in venue["open_orders"]} == {"Bid", "Ask"}  # Backpack's words
        # a live bot publishes its grid's figures like a paper one, and never the account's balances
        for _ in range(50):
            row = {x["name"]: x for x in json.loads(box.gridbot("list", "--json", check=True).stdout)}["bpx"]
            if row["orders_open"]:
                break
            time.sleep(0.2)
        assert (row["mode"], row["exchange"], row["symbol"]) == ("live", "backpack", "SOL_USDC")
        assert row["orders_open"] >= 8 and row["total_pnl"] is not None
        figs = box.sh("cat /run/gridbot/figures/bpx.json", check=True).stdout
        assert "balance" not in figs and "available" not in figs

        # the keys are nowhere but the credential
        pid = status["MainPID"]
        environ = box.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ", check=True).stdout
        cmdline = box.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline", check=True).stdout
        journal = box.run(["journalctl", "--no-pager", "-o", "cat"], check=True).stdout
        bot_journal = box.run(["journalctl", "--no-pager", "-o", "cat", "-u", "gridbot@bpx.service"], check=True).stdout
        assert api_secret not in journal  # the fake server's own command line carries the public key
        for secret in (api_secret, api_key):
            assert secret not in environ and secret not in cmdline and secret not in bot_journal
        assert "CREDENTIALS_DIRECTORY=" in environ

        # removing the credentials takes the drop-in away too
        box.gridbot("stop", "bpx", check=True)
        assert box.gridbot("credentials", "rm", "bpx").returncode == 0
        assert box.run(["test", "-e", "/etc/systemd/system/gridbot@bpx.service.d/50-live.conf"]).returncode != 0
        assert box.gridbot("start", "bpx").returncode == 6
    finally:
        box.sh("systemctl stop gridbot@bpx.service fakebp.service; systemctl reset-failed gridbot@bpx.service; "
               "rm -f /etc/gridbot/bpx.json; rm -rf /etc/systemd/system/gridbot@bpx.service.d; systemctl daemon-reload")


def test_disk_full_while_live_cancels_the_orders_and_fails_with_one_line(box):
    """Issue 10, item 12: the state directory's filesystem fills while a live bot trades. The next
    fill cannot be recorded: no further order is placed, on_stop=cancel is applied straight on the
    venue (no order left unattended), and the bot fails with one line naming the cause."""
    port, name, real = 18998, "bpfull", "/var/lib/private/gridbot/bpfull"
    api_key, api_secret = keypair()
    start_fake_backpack(box, "fakebp2", port, api_key, "/root/fake-full.json")
    box.put(f"/etc/gridbot/{name}.json", live_config().replace(str(PORT), str(port)))
    box.sh(f"mkdir -p {real} && mount -t tmpfs -o size=2M,mode=0700 tmpfs {real}", check=True)
    call = ("import json, sys, urllib.request as u; m, path, body = sys.argv[1:4]; "
            "r = u.Request(f'http://127.0.0.1:{port}' + path, data=body.encode() or None, method=m, "
            "headers={'Content-Type': 'application/json'}); sys.stdout.write(u.urlopen(r).read().decode())")
    venue = lambda m="GET", path="/_state", body="": json.loads(box.run(  # noqa: E731
        ["/opt/gridbot/bin/python", "-c", call.replace("{port}", str(port)), m, path, body], check=True).stdout or "null")
    try:
        r = box.gridbot("credentials", "set", name, input=json.dumps({"api_key": api_key, "api_secret": api_secret}))
        assert r.returncode == 0, r.stderr
        r = box.gridbot("start", name)
        assert r.returncode == 0, r.stderr + box.gridbot("logs", name, "-n", "30").stdout
        before = venue()["open_orders"]
        assert len(before) >= 8, before
        assert box.run(["grep", "-E", r"^Max core file size +0 +0", f"/proc/{box.show(f'gridbot@{name}.service', 'MainPID')['MainPID']}/limits"]).returncode == 0
        box.sh(f"dd if=/dev/zero of={real}/filler bs=4k 2>/dev/null; true")  # the disk is full now
        venue("POST", "/_price", json.dumps({"symbol": "SOL_USDC", "price": "139"}))  # buys fill: must be recorded
        deadline = time.monotonic() + 60
        while "stopped placing orders" not in box.run(["journalctl", "-q", "-o", "cat", "-u", f"gridbot@{name}.service"]).stdout:
            assert time.monotonic() < deadline, box.gridbot("logs", name, "-n", "40").stdout
            time.sleep(0.3)
        log = box.run(["journalctl", "-q", "-o", "cat", "-u", f"gridbot@{name}.service"]).stdout
        line = next(ln for ln in log.splitlines() if "stopped placing orders" in ln)
        assert "full" in line and "on_stop=cancel: cancelled" in line and "Traceback" not in log, line
        after = venue()["open_orders"]
        assert after == [], after  # nothing left resting for a bot that is gone
        time.sleep(7)  # past RestartSec=5: the restarted bot, disk still full, places nothing either
        assert int(box.show(f"gridbot@{name}.service", "NRestarts")["NRestarts"]) >= 1
        assert venue()["open_orders"] == []
    finally:
        box.sh(f"systemctl stop gridbot@{name}.service fakebp2.service; systemctl reset-failed gridbot@{name}.service "
               f"fakebp2.service; umount {real}; rm -rf {real} /var/lib/gridbot/{name} /etc/gridbot/{name}.json "
               f"/etc/systemd/system/gridbot@{name}.service.d; gridbot credentials rm {name}; systemctl daemon-reload",
               timeout=60)
