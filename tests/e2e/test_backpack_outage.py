"""Issue 9 in the real systemd: a live instance whose exchange (the fake Backpack) is unreachable at
start waits for it (STATUS=waiting for exchange ...), answers SIGTERM at once (exit 0, no "crashed",
no failure alert), trades once the exchange is back, and rides out a run-time outage with its loop
and watchdog alive, /healthz 503 while it lasts and 200 again after. A fresh start whose account check
needs the exchange (the first start after ``gridbot reset``) waits the same way: active (degraded)
after the start grace, never failed by the start timeout."""
from __future__ import annotations

import json
import time


from .conftest import keypair, start_fake_backpack

NAME = "bpo"
UNIT = f"gridbot@{NAME}.service"


def free_port(box) -> int:
    out = box.run(["/opt/gridbot/bin/python", "-c",
                   "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"],
                  check=True).stdout
    return int(out.strip())


def http(box, url: str, method: str = "GET", body: dict | None = None) -> tuple[int, str]:
    script = ("import urllib.request,urllib.error,sys,json\n"
              f"req=urllib.request.Request({url!r}, method={method!r}, data={json.dumps(body).encode() if body else None!r})\n"
              "try:\n r=urllib.request.urlopen(req, timeout=5); print(r.status); print(r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n print(e.code); print(e.read().decode())\n"
              "except OSError as e:\n print(0); print(e)\n")
    out = box.run(["/opt/gridbot/bin/python", "-c", script]).stdout
    code, _, text = out.partition("\n")
    return int(code or 0), text


def wait(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = cond()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def start_fake(box, port: int, api_key: str) -> None:
    start_fake_backpack(box, "fakebpo", port, api_key, "/root/fake-outage.json")


def test_live_instance_waits_for_the_exchange_stops_at_once_and_rides_out_an_outage(box):
    api_key, api_secret = keypair()
    port, web = free_port(box), free_port(box)
    box.put(f"/etc/gridbot/{NAME}.json", json.dumps({
        "exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 120, "upper_price": 180, "levels": 10,
        "qty_per_level": 0.1, "web_port": web, "reconcile_interval_s": 5,
        "backpack": {"base_url": f"http://127.0.0.1:{port}", "poll_interval_s": 0.5}}))
    box.sh(f"rm -f /dev/shm/gridbot-alert-{NAME}")
    try:
        r = box.gridbot("credentials", "set", NAME, input=json.dumps({"api_key": api_key, "api_secret": api_secret}))
        assert r.returncode == 0, r.stderr

        # 1. nothing listens on the exchange's port: the bot waits, saying so; SIGTERM is answered at once
        box.run(["systemctl", "start", "--no-block", UNIT], check=True)
        wait(lambda: "waiting for exchange" in box.show(UNIT, "StatusText")["StatusText"], 40, "STATUS=waiting")
        t0 = time.monotonic()
        box.run(["systemctl", "stop", UNIT], check=True)
        took = time.monotonic() - t0
        p = box.show(UNIT, "ActiveState", "Result", "ExecMainStatus")
        assert took < 5 and p["ActiveState"] == "inactive" and p["Result"] == "success", (took, p)
        assert p["ExecMainStatus"] == "0"
        journal = box.run(["journalctl", "--no-pager", "-o", "cat", "-u", UNIT], check=True).stdout
        assert "crashed" not in journal and "Traceback" not in journal, journal
        assert journal.count("exchange unreachable") == 1, journal  # one line for the one kind of failure
        assert box.run(["test", "-e", f"/dev/shm/gridbot-alert-{NAME}"]).returncode != 0
        assert box.show(f"gridbot-alert@{NAME}.service", "ActiveState")["ActiveState"] == "inactive"

        # 2. started again while the exchange is down; the exchange comes up; the grid is placed
        box.run(["systemctl", "start", "--no-block", UNIT], check=True)
        wait(lambda: "waiting for exchange" in box.show(UNIT, "StatusText")["StatusText"], 40, "STATUS=waiting")
        code, text = http(box, f"http://127.0.0.1:{web}/healthz")
        assert code == 503 and "waiting for exchange" in text, (code, text)
        start_fake(box, port, api_key)
        status = wait(lambda: (s := box.show(UNIT, "ActiveState", "StatusText", "MainPID"))["ActiveState"] == "active"
                      and " orders | " in s["StatusText"] and "DEGRADED" not in s["StatusText"] and s, 90,
                      "the grid after the outage")
        pid = status["MainPID"]
        code, _ = http(box, f"http://127.0.0.1:{port}/_state")
        assert code == 200
        wait(lambda: http(box, f"http://127.0.0.1:{web}/healthz")[0] == 200, 30, "healthz 200")
        venue = json.loads(http(box, f"http://127.0.0.1:{port}/_state")[1])
        assert len(venue["open_orders"]) >= 8

        # 3. a run-time outage longer than WatchdogSec: degraded, not killed; healthy again after it
        assert http(box, f"http://127.0.0.1:{port}/_down", "POST", {"mode": "503"})[0] == 200
        wait(lambda: http(box, f"http://127.0.0.1:{web}/healthz")[0] == 503, 40, "healthz 503 in the outage")
        wait(lambda: "DEGRADED" in box.show(UNIT, "StatusText")["StatusText"], 20, "STATUS=DEGRADED")
        time.sleep(35)  # > WatchdogSec=30
        p = box.show(UNIT, "ActiveState", "MainPID", "NRestarts")
        assert p["ActiveState"] == "active" and p["MainPID"] == pid and p["NRestarts"] == "0", p
        metrics = http(box, f"http://127.0.0.1:{web}/metrics")[1]
        assert 'gridbot_degraded{instance="bpo",symbol="SOL_USDC"} 1' in metrics
        assert http(box, f"http://127.0.0.1:{port}/_up", "POST", {})[0] == 200
        wait(lambda: http(box, f"http://127.0.0.1:{web}/healthz")[0] == 200, 90, "healthz 200 after the outage")
        wait(lambda: "DEGRADED" not in box.show(UNIT, "StatusText")["StatusText"], 20, "STATUS without DEGRADED")
        assert box.show(UNIT, "MainPID")["MainPID"] == pid
        journal = box.run(["journalctl", "--no-pager", "-o", "cat", "-u", UNIT], check=True).stdout
        assert "exchange reachable again" in journal and "Traceback" not in journal
        box.run(["systemctl", "stop", UNIT], check=True)
        assert box.show(UNIT, "Result")["Result"] == "success"
    finally:
        box.sh(f"systemctl stop {UNIT} fakebpo.service; systemctl reset-failed {UNIT} fakebpo.service; "
               f"rm -f /etc/gridbot/{NAME}.json; gridbot credentials rm {NAME}; systemctl daemon-reload", timeout=60)


def test_first_start_after_a_reset_during_a_long_outage_is_active_degraded_then_cancels_and_trades(box):
    """An empty state whose fresh-start check needs the exchange (a pending `gridbot reset`: the old
    orders are cancelled first), started while the exchange is down for longer than the start grace
    (20 s): ``systemctl start`` returns (READY=1, degraded) instead of hitting the start timeout; once
    the exchange is back the old orders are cancelled and the new grid placed."""
    name, unit, fake_unit = "bpr", "gridbot@bpr.service", "fakebpr"
    api_key, api_secret = keypair()
    port, web = free_port(box), free_port(box)
    box.put(f"/etc/gridbot/{name}.json", json.dumps({
        "exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 120, "upper_price": 180, "levels": 10,
        "qty_per_level": 0.1, "web_port": web, "on_stop": "keep",
        "backpack": {"base_url": f"http://127.0.0.1:{port}", "poll_interval_s": 0.5}}))
    try:
        r = box.gridbot("credentials", "set", name, input=json.dumps({"api_key": api_key, "api_secret": api_secret}))
        assert r.returncode == 0, r.stderr
        start_fake_backpack(box, fake_unit, port, api_key, "/root/fake-reset.json")

        # an earlier state traded; it is stopped (on_stop=keep: its orders stay) and reset
        box.run(["systemctl", "start", unit], check=True, timeout=60)
        wait(lambda: " orders | " in box.show(unit, "StatusText")["StatusText"], 60, "the first grid")
        box.run(["systemctl", "stop", unit], check=True)
        old = {o["client_id"] for o in json.loads(http(box, f"http://127.0.0.1:{port}/_state")[1])["open_orders"]}
        assert len(old) >= 8
        r = box.gridbot("reset", name, "--yes")
        assert r.returncode == 0 and "retires its client-id epochs" in r.stdout, (r.stdout, r.stderr)

        # the exchange goes down; the fresh start waits for it past the grace, READY=1 degraded
        assert http(box, f"http://127.0.0.1:{port}/_down", "POST", {"mode": "503"})[0] == 200
        t0 = time.monotonic()
        r = box.run(["systemctl", "start", unit], timeout=80)
        took = time.monotonic() - t0
        p = box.show(unit, "ActiveState", "SubState", "StatusText", "NRestarts")
        assert r.returncode == 0 and p["ActiveState"] == "active", (r.stderr, p, took)
        assert 15 < took < 60 and p["NRestarts"] == "0", (took, p)
        assert p["StatusText"].startswith("waiting for exchange"), p
        code, text = http(box, f"http://127.0.0.1:{web}/healthz")
        assert code == 503 and "waiting for exchange" in text, (code, text)
        venue = json.loads(http(box, f"http://127.0.0.1:{port}/_state")[1])
        assert {o["client_id"] for o in venue["open_orders"]} == old  # nothing cancelled or placed yet

        # the exchange is back: the reset's old orders go, the new grid is placed
        assert http(box, f"http://127.0.0.1:{port}/_up", "POST", {})[0] == 200
        wait(lambda: " orders | " in (s := box.show(unit, "StatusText")["StatusText"]) and "DEGRADED" not in s,
             90, "the new grid after the outage")
        wait(lambda: http(box, f"http://127.0.0.1:{web}/healthz")[0] == 200, 30, "healthz 200")
        now = {o["client_id"] for o in json.loads(http(box, f"http://127.0.0.1:{port}/_state")[1])["open_orders"]}
        assert len(now) >= 8 and not now & old, (now, old)
        journal = box.run(["journalctl", "--no-pager", "-o", "cat", "-u", unit], check=True).stdout
        assert "reset: cancelled" in journal and "ready without the exchange" in journal, journal
        assert "Traceback" not in journal and "crashed" not in journal, journal
        box.run(["systemctl", "stop", unit], check=True)
        assert box.show(unit, "Result")["Result"] == "success"
    finally:
        box.sh(f"systemctl stop {unit} {fake_unit}.service; systemctl reset-failed {unit} {fake_unit}.service; "
               f"rm -f /etc/gridbot/{name}.json; gridbot credentials rm {name}; systemctl daemon-reload", timeout=60)
