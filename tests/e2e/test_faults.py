"""Faults against a real systemd: kill -9, a hung bot, a crash loop, a full or read-only state
directory, and a 50-bot fleet on a 2-core machine.

Each test uses instance names of its own and removes its configs, drop-ins and state afterwards.
Test-only drop-ins (shorter RestartSec=/WatchdogSec=) only shorten waits; the directives under
test (Restart=, WatchdogSec=, StartLimit*, OnFailure=) are the shipped template's.
"""
from __future__ import annotations

import functools
import json
import random
import re
import time

import pytest

from .conftest import paper_config
from .conftest import wait_for as _wait_for


wait_for = functools.partial(_wait_for, timeout=30.0)  # these wait for restarts: longer than the default


def unit(name: str) -> str:
    return f"gridbot@{name}.service"


def props(box, name: str) -> dict:
    return box.show(unit(name), "ActiveState", "SubState", "MainPID", "NRestarts", "Result",
                    "ExecMainStartTimestampMonotonic", "StatusText")


def is_ready(box, name: str):
    """Type=notify: active/running means the bot sent READY=1."""
    p = props(box, name)
    return p if p["ActiveState"] == "active" and p["SubState"] == "running" and p["MainPID"] != "0" else None


def dropin(box, name: str, text: str, file: str = "90-test.conf") -> None:
    box.put(f"/etc/systemd/system/{unit(name)}.d/{file}", text)
    box.run(["systemctl", "daemon-reload"], check=True)


def forget(box, *names: str) -> None:
    for n in names:
        box.sh(f"systemctl stop {unit(n)}; systemctl reset-failed {unit(n)} gridbot-alert@{n}.service; "
               f"rm -rf /etc/systemd/system/{unit(n)}.d /etc/gridbot/{n}.json /var/lib/gridbot/{n} "
               f"/var/lib/private/gridbot/{n}", timeout=60)
    box.run(["systemctl", "daemon-reload"])


def journal(box, u: str) -> str:
    return box.run(["journalctl", "-q", "--no-pager", "-o", "cat", "-u", u]).stdout


# -- the state store, read inside the box (root may read the 0700 state directory) ----------------
INVARIANTS = r'''
import json, sqlite3, sys
db = sqlite3.connect("file:/var/lib/gridbot/%s/gridbot.sqlite?mode=ro", uri=True)
db.execute("BEGIN")  # one consistent snapshot
fills = {r[0]: r[1] for r in db.execute("SELECT trade_id, client_id FROM fills")}
orders = {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT client_id, status, gap, side FROM orders")}
kv = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM kv")}
print(json.dumps({"fills": fills, "orders": orders, "paper": kv.get("paper"), "strategy": kv.get("strategy"),
                  "integrity": db.execute("PRAGMA integrity_check").fetchone()[0]}))
'''


def store_snapshot(box, name: str) -> dict:
    r = box.run(["/usr/bin/python3", "-c", INVARIANTS % name], check=True)
    return json.loads(r.stdout)


def check_invariants(snap: dict, before_ms: int) -> None:
    """No lost fill (every venue fill older than this run's start is in the ledger, for one of our
    orders), no duplicate order (one resting order per grid slot and per price, every venue order
    known to the store), and a sound database."""
    assert snap["integrity"] == "ok"
    venue = snap["paper"]["venue"]
    ledger, orders = snap["fills"], {int(k): v for k, v in snap["orders"].items()}
    for f in venue["fills"]:
        trade_id, cid, ts = f["trade_id"], f["client_id"], f["timestamp_ms"]
        if ts < before_ms:
            assert trade_id in ledger, f"fill {trade_id} (order {cid}) lost across the restart"
    for trade_id, cid in ledger.items():
        assert cid in orders, f"fill {trade_id} for unknown order {cid}"
    live = [o for o in venue["orders"] if o["status"] == "open"]
    for o in live:
        assert o["client_id"] in orders, f"venue order {o['client_id']} unknown to the store (placed twice?)"
    prices = [(o["side"], o["price"]) for o in live]
    assert len(prices) == len(set(prices)), f"two resting orders at one price: {sorted(prices)}"
    resting = [v[1] for v in orders.values() if v[0] in ("open", "pending") and v[1] is not None]
    assert len(resting) == len(set(resting)), f"two orders in one grid slot: {sorted(resting)}"


def test_kill_9_at_random_moments(box, make_instance):
    """A busy paper bot (tight grid, fast ticks: fills every few seconds) killed 8 times at random."""
    name = make_instance("flt_kill", low=140, high=160, levels=20,
                         paper={"price": {"start_price": 150, "interval_s": 0.05, "volatility": 0.003}})
    # restart at once and never hit the start limit: 8 kills in ~20 s is the point of this test
    dropin(box, name, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestartSec=100ms\n")
    rng = random.Random(5)
    try:
        box.gridbot("start", name, check=True)
        p = wait_for(lambda: is_ready(box, name), what="first READY")
        kills = 8
        for i in range(kills):
            time.sleep(rng.uniform(0.3, 2.5))  # mid-tick, mid-fill, mid-commit: wherever it lands
            # every fill the killed process made before this moment must survive into the ledger
            kill_ms = int(box.run(["date", "+%s%3N"], check=True).stdout)
            box.run(["kill", "-9", p["MainPID"]], check=True)
            old = p["MainPID"]
            p = wait_for(lambda: (lambda q: q if q and q["MainPID"] != old else None)(is_ready(box, name)),
                         what=f"restart after kill {i + 1}")
            check_invariants(store_snapshot(box, name), kill_ms)
        assert int(p["NRestarts"]) == kills
        snap = store_snapshot(box, name)
        assert len(snap["fills"]) > 0, "no fill at all: the run did not exercise the ledger"
        box.gridbot("stop", name, check=True)  # a clean stop settles everything
        final = store_snapshot(box, name)
        check_invariants(final, 2**62)
        assert final["strategy"]["fills"] == len(final["fills"])
        print(f"kill -9 x{kills}: {len(final['fills'])} fills, {len(final['orders'])} orders, invariants held")
    finally:
        forget(box, name)


def test_hung_bot_is_killed_by_the_watchdog_and_restarted(box, make_instance):
    name = make_instance("flt_hang")
    dropin(box, name, "[Service]\nWatchdogSec=3\nRestartSec=100ms\nTimeoutAbortSec=5\n")
    try:
        box.gridbot("start", name, check=True)
        p = wait_for(lambda: is_ready(box, name), what="READY")
        time.sleep(2)  # a few healthy pings first: the watchdog must not fire on a live bot
        assert props(box, name)["MainPID"] == p["MainPID"]
        box.run(["kill", "-STOP", p["MainPID"]], check=True)
        q = wait_for(lambda: (lambda r: r if r and r["MainPID"] != p["MainPID"] else None)(is_ready(box, name)),
                     timeout=20, what="restart after the watchdog")
        assert int(q["NRestarts"]) == int(p["NRestarts"]) + 1
        log = journal(box, unit(name))
        assert "Watchdog timeout" in log and "Failed with result 'watchdog'" in log, log[-2000:]
    finally:
        forget(box, name)


ALERT_HOOK = """#!/bin/sh
# test hook: runs as the alert unit's throw-away user, in its sandbox; it can only log.
echo "test alert hook ran for $1 as uid $(id -u)"
"""


def test_crash_loop_hits_the_start_limit_and_alerts(box, make_instance):
    name = make_instance("flt_loop")
    box.put("/etc/gridbot/alert", ALERT_HOOK, mode="0755")
    # a bot that dies at once with a retryable status (not 78): Restart= keeps trying
    dropin(box, name, "[Service]\nExecStart=\nExecStart=/bin/sh -c 'echo crashing; exit 3'\nRestartSec=100ms\n")
    try:
        r = box.gridbot("start", name, "--timeout", "20")
        assert r.returncode != 0 and "gridbot logs" in r.stderr
        wait_for(lambda: props(box, name)["ActiveState"] == "failed", timeout=20, what="failed")
        p = props(box, name)
        # systemd 252 keeps the last run's result (exit-code) and logs the start limit separately
        assert p["Result"] in ("start-limit-hit", "exit-code") and int(p["NRestarts"]) >= 4, p
        assert "Start request repeated too quickly" in journal(box, unit(name))
        row = next(x for x in json.loads(box.gridbot("list", "--json", check=True).stdout) if x["name"] == name)
        assert row["active_state"] == "failed" and row["result"] == p["Result"] and row["exit_status"] == 3, row
        human = [ln for ln in box.gridbot("list", check=True).stdout.splitlines() if ln.startswith(name)]
        assert human and "failed" in human[0]
        # OnFailure=: the alert unit logged its line and ran the operator's hook with the name
        wait_for(lambda: f"test alert hook ran for {name}" in journal(box, f"gridbot-alert@{name}.service"),
                 timeout=15, what="alert hook")
        alert = journal(box, f"gridbot-alert@{name}.service")
        assert f"gridbot instance {name} FAILED" in alert and f"test alert hook ran for {name} as uid 0" not in alert, alert
        assert alert.count("test alert hook ran") == 1, alert  # once, when the start limit was hit
        prio = box.run(["journalctl", "-q", "-u", f"gridbot-alert@{name}.service", "-p", "crit", "-o", "cat"]).stdout
        assert f"gridbot instance {name} FAILED" in prio  # logged at priority 2, not buried as info
        r = box.gridbot("cleanup", "--yes", check=True)
        assert f"{name}: reset" in r.stdout
        assert props(box, name)["ActiveState"] == "inactive"
        row = next(x for x in json.loads(box.gridbot("list", "--json", check=True).stdout) if x["name"] == name)
        assert row["active_state"] == "inactive"
    finally:
        box.sh("rm -f /etc/gridbot/alert")
        forget(box, name)


def _seed_state(box, name: str) -> dict:
    """Run the bot until it has a grid in its store, stop it cleanly, return the store."""
    box.gridbot("start", name, check=True)
    wait_for(lambda: is_ready(box, name), what="READY")
    box.gridbot("stop", name, check=True)
    snap = store_snapshot(box, name)
    assert snap["integrity"] == "ok" and snap["orders"]
    return snap


@pytest.mark.parametrize("fault", ["read-only", "disk-full"])
def test_unwritable_state_dir_at_start(box, make_instance, fault):
    """The state directory becomes read-only, or its filesystem full: start fails with a clear
    error naming the cause, nothing is corrupted, and the bot resumes once the fault is gone."""
    name = make_instance(f"flt_{fault.replace('-', '_')}")
    d = f"/var/lib/gridbot/{name}"  # what the bot is told ($STATE_DIRECTORY)
    real = f"/var/lib/private/gridbot/{name}"  # DynamicUser=: where it is
    before = _seed_state(box, name)
    if fault == "read-only":
        box.sh(f"mount --bind {real} {real} && mount -o remount,bind,ro {real}", check=True)
        needle = r"read-?only"
    else:  # a tiny filesystem holding the existing store, then filled to the last byte
        box.sh(f"cp -a {real} /run/flt_keep && mount -t tmpfs -o size=1M,mode=0700 tmpfs {real} && "
               f"cp -a /run/flt_keep/. {real}/ && chown \"$(stat -c %u:%g /run/flt_keep)\" {real} && "
               f"(dd if=/dev/zero of={real}/filler bs=4k 2>/dev/null || true) && rm -rf /run/flt_keep", check=True)
        needle = r"full"
    try:
        r = box.gridbot("start", name, "--timeout", "20")
        assert r.returncode == 1, (r.stdout, r.stderr)
        # the bot's own line is the job's reason (exit 1 restarts, so the start job fails with it)
        assert "FAILED" in r.stderr and f"state directory {d} unusable" in r.stderr, r.stderr
        assert re.search(needle, r.stderr, re.I), r.stderr
        log = box.gridbot("logs", name, "-n", "60").stdout
        assert re.search(needle, log, re.I), log[-3000:]
        # one clear line naming the directory, not a Python traceback
        assert f"state directory {d} unusable" in log and "Traceback" not in log, log[-3000:]
        box.run(["systemctl", "stop", unit(name)])
        box.run(["systemctl", "reset-failed", unit(name)])
    finally:
        if fault == "disk-full":
            box.sh(f"rm -f {real}/filler; cp -a {real} /run/flt_keep; umount {real}; cp -a /run/flt_keep/. {real}/; "
                   "rm -rf /run/flt_keep")
        else:
            box.sh(f"umount {real}")
    try:
        after = store_snapshot(box, name)
        assert after["integrity"] == "ok"
        assert after["fills"] == before["fills"] and after["orders"] == before["orders"]
        r = box.gridbot("start", name, "--timeout", "20")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: is_ready(box, name), what="READY after the fault is gone")
        resumed = box.run(["journalctl", "-q", "--no-pager", "-o", "cat", "-u", unit(name), "-n", "30"]).stdout
        assert "new grid" not in resumed.split("Starting")[-1], "the bot lost its grid and started over"
    finally:
        forget(box, name)


def test_fifty_paper_instances_at_once(box):
    names = [f"flt50_{i:02d}" for i in range(1, 51)]
    for i, n in enumerate(names):
        box.put(f"/etc/gridbot/{n}.json", paper_config(low=100 + i, high=200 + i, levels=10))
    try:
        t = time.monotonic()
        r = box.gridbot("start", *names, "--timeout", "120", timeout=180)
        took = time.monotonic() - t
        assert r.returncode == 0, r.stderr[-3000:]
        assert all(f"{n}: started" in r.stdout for n in names)
        rows = {x["name"]: x for x in json.loads(box.gridbot("list", "--json", check=True).stdout)}
        for n in names:
            assert rows[n]["active_state"] == "active" and rows[n]["sub_state"] == "running", rows[n]
            assert rows[n]["main_pid"]
        assert len({rows[n]["main_pid"] for n in names}) == 50
        stats = json.loads(box.gridbot("stats", "--json", check=True).stdout)
        mine = [x for x in stats["instances"] if x["name"] in set(names)]
        assert len(mine) == 50
        assert "memory_bytes" in stats["total"] and "cpu_seconds" in stats["total"]
        mem = [x["memory_bytes"] for x in mine]
        if all(m is not None for m in mem):  # real on cgroup v2 hosts and in the accounting-enabled box
            assert stats["total"]["memory_bytes"] >= sum(mem) > 50 * 1_000_000
        print(f"50 paper bots READY in {took:.1f} s; total memory "
              f"{stats['total']['memory_bytes']} B, cpu {stats['total']['cpu_seconds']} s")
    finally:
        box.gridbot("stop", *names, "--timeout", "120", timeout=180)
        box.sh("rm -rf " + " ".join(f"/etc/gridbot/{n}.json /var/lib/gridbot/{n} /var/lib/private/gridbot/{n}"
                                    for n in names))
