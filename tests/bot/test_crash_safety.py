"""kill -9 a fast paper bot at many random moments, restart it each time, then check the books.

The paper venue lives in the same SQLite file but commits separately from the bot, just as a real
exchange keeps its own state: a kill between "venue changed" and "bot recorded it" is exactly the
race reconciliation must survive.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KILLS = 14

CONFIG = {
    "exchange": "paper", "symbol": "SOL_USDC", "lower_price": "126", "upper_price": "174", "levels": 40,
    "qty_per_level": "0.37", "on_stop": "keep", "fee_rate": "0.001",
    "paper": {"seed": 9, "initial_quote": "5000", "initial_base": "1.5", "taker_fee": "0.002",
              "price": {"start_price": "150", "volatility": 0.003, "jump_probability": 0.01, "jump_size": 0.008,
                        "interval_s": 0.01}},
}


def _spawn(tmp: Path, sock_path: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "STATE_DIRECTORY")}
    env.update(GRIDBOT_CONFIG_DIR=str(tmp / "cfg"), STATE_DIRECTORY=str(tmp / "state"), NOTIFY_SOCKET=sock_path,
               GRIDBOT_PAPER_LATENCY_MS="6")  # widens "venue acted, bot not yet told": kills land there
    return subprocess.Popen([sys.executable, "-m", "gridbot.runner", "crash"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "stderr.log", "ab"))


def _wait_for_fill(log: Path, proc: subprocess.Popen, nth: int, timeout: float = 20) -> None:
    start = log.stat().st_size
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        with open(log, "rb") as f:
            f.seek(start)
            if f.read().count(b"<6>fill ") >= nth:
                return
        time.sleep(0.001)


def _wait_ready(sock: socket.socket, proc: subprocess.Popen, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if b"READY=1" in sock.recv(65536):
                return
        except socket.timeout:
            assert proc.poll() is None, f"bot exited with {proc.returncode}"
    raise AssertionError("no READY=1")


def test_kill_9_at_random_points_loses_nothing(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "crash.json").write_text(json.dumps(CONFIG))
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    rng = random.Random(20261125)
    for i in range(KILLS):
        proc = _spawn(tmp_path, sock_path)
        if i % 2 == 0:  # anywhere: mid-startup (reconcile, first placement) or deep in the fill stream
            time.sleep(rng.uniform(0.1, 1.6))
        else:  # a few ms after a fill is logged: inside "record fill, place counter-order, record it"
            _wait_for_fill(tmp_path / "stderr.log", proc, rng.randint(1, 4))
            time.sleep(rng.uniform(0, 0.015))
        if proc.poll() is not None:
            raise AssertionError(f"bot exited early with {proc.returncode}:\n{(tmp_path / 'stderr.log').read_text()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        path = tmp_path / "state" / "gridbot.sqlite"
        if path.exists():  # a kill before the bot got that far leaves nothing to check yet
            db = sqlite3.connect(str(path))
            assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            db.close()
        try:
            while True:
                sock.recv(65536)
        except socket.timeout:
            pass
    # final run: reconcile, trade a moment, stop cleanly (on_stop=keep leaves the book for inspection)
    proc = _spawn(tmp_path, sock_path)
    _wait_ready(sock, proc)
    _wait_for_fill(tmp_path / "stderr.log", proc, 10)  # a loaded machine may have killed it early every time
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    try:
        _check_books(tmp_path / "state" / "gridbot.sqlite")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- bot log tail ---\n{(tmp_path / 'stderr.log').read_text()[-4000:]}") from exc


def _check_books(path: Path) -> None:
    db = sqlite3.connect(str(path))
    kv = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM kv")}
    venue, strat = kv["paper"]["venue"], kv["strategy"]
    n_trades = venue["counters"]["trade_seq"]
    assert n_trades >= 10, "the run should have traded"
    fills = db.execute("SELECT trade_id, client_id, side, price, qty, fee, fee_asset FROM fills").fetchall()
    # 1. no fill lost, none duplicated, none invented: the bot recorded every venue trade exactly once
    assert sorted(int(f[0][1:]) for f in fills) == list(range(1, n_trades + 1))
    kept = {f["trade_id"]: f for f in venue["fills"]}
    for f in fills:
        if f[0] in kept:
            v = kept[f[0]]
            assert (f[1], f[2], f[3], f[4], f[5], f[6]) == tuple(v[k] for k in ("client_id", "side", "price", "qty", "fee",
                                                                        "fee_asset"))
    # 2. every order the venue ever saw was written down first (no unrecorded or duplicate placement)
    recorded = {r[0]: r for r in db.execute("SELECT client_id, side, price, qty, status FROM orders")}
    for o in venue["orders"]:
        cid, side, price, qty = o["client_id"], o["side"], o["price"], o["qty"]
        assert cid in recorded, f"venue order {cid} was never recorded as an intent"
        r = recorded[cid]
        assert (r[1], D(r[3])) == (side, D(qty))
        if r[2] is not None:
            assert D(r[2]) == D(price)
    assert not [r for r in recorded.values() if r[4] == "pending"]
    # 3. the strategy's live orders are exactly the venue's open book; one order per line at most
    open_book = {b["client_id"] for b in venue["book"]}
    gaps = strat["gaps"]
    live = {g["cid"]: (i, g["side"]) for i, g in enumerate(gaps) if g["cid"]}
    assert set(live) == open_book
    lines = [i if side == "buy" else i + 1 for i, side in live.values()]
    assert len(lines) == len(set(lines))
    by_cid = {o["client_id"]: o for o in venue["orders"]}
    for cid, (i, side) in live.items():
        o = by_cid[cid]
        price = strat["params"]["buy"][i] if side == "buy" else strat["params"]["sell"][i + 1]
        assert (o["side"], D(o["price"])) == (side, D(price)) and o["status"] == "open"
    # 4. balances: venue totals + collected fees == start + what the recorded fills moved,
    #    reservations match the open book, and the strategy's books agree with the venue
    base0, quote0 = D(CONFIG["paper"]["initial_base"]), D(CONFIG["paper"]["initial_quote"])
    base_flow = sum((D(f[4]) if f[2] == "buy" else -D(f[4]) for f in fills), D(0))
    quote_flow = sum((-D(f[3]) * D(f[4]) if f[2] == "buy" else D(f[3]) * D(f[4]) for f in fills), D(0))
    avail = {a: D(x) for a, x in venue["available"].items()}
    locked = {a: D(x) for a, x in venue["locked"].items()}
    fees = {a: D(x) for a, x in venue["fees_collected"].items()}
    assert avail["SOL"] + locked["SOL"] + fees["SOL"] == base0 + base_flow
    assert avail["USDC"] + locked["USDC"] + fees["USDC"] == quote0 + quote_flow
    opens = [by_cid[c] for c in open_book]
    assert locked["USDC"] == sum(((D(o["qty"]) - D(o["filled_qty"])) * D(o["price"]) for o in opens if o["side"] == "buy"), D(0))
    assert locked["SOL"] == sum((D(o["qty"]) - D(o["filled_qty"]) for o in opens if o["side"] == "sell"), D(0))
    assert D(strat["base_delta"]) == avail["SOL"] + locked["SOL"] - base0
    assert D(strat["quote_delta"]) == avail["USDC"] + locked["USDC"] - quote0
    assert strat["fills"] == len(fills)
