"""The real bot process (``python -m gridbot.runner NAME``) against a fake systemd notify socket."""
from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import pytest

from .conftest import paper_config
from gridbot_testsupport import free_port


def test_ready_status_watchdog_and_sigterm_cancels(bot):
    b = bot(cfg=paper_config(), watchdog_usec=400_000).start()
    ready = b.wait_for("READY=1")
    status = ready.split("STATUS=", 1)[1].split("\n")[0]
    # every figure labelled: SOL 150 | 10/10 orders | grid +0.0000 USDC (0 pairs) | pnl +0.0000 USDC | running
    assert re.fullmatch(r"SOL \d+(\.\d+)? \| 10/10 orders \| grid [+-]\d+\.\d+ USDC \(0 pairs\) \| "
                        r"pnl [+-]\d+\.\d+ USDC \| running", status), status
    figs = json.loads((b.figures_dir / "bot1.json").read_text())  # published at READY
    assert figs["orders_open"] == 10 and figs["levels"] == 10 and figs["mode"] == "paper"
    assert oct((b.figures_dir / "bot1.json").stat().st_mode & 0o777) == "0o644"
    b.wait_for("WATCHDOG=1")
    time.sleep(0.6)
    b.drain()
    pings = [m for m in b.messages if "WATCHDOG=1" in m]
    assert len(pings) >= 2
    assert b.stop() == 0
    b.drain()
    assert any("STOPPING=1" in m for m in b.messages)
    venue = b.kv("paper")["venue"]
    assert venue["book"] == []  # on_stop=cancel: nothing left resting
    assert b.kv("strategy")["phase"] == "parked"
    log = b.log()
    assert all(line[:3] in {"<3>", "<4>", "<6>", "<7>"} for line in log.splitlines()), log
    assert "on_stop=cancel" in log


def test_restart_continues_and_on_stop_keep_leaves_orders(bot):
    b = bot(cfg=paper_config(on_stop="keep")).start()
    b.wait_for("READY=1")
    time.sleep(1.0)
    assert b.stop() == 0
    first = b.kv("paper")["venue"]
    assert len(first["book"]) == 10  # on_stop=keep
    fills1 = b.db().execute("SELECT count(*) FROM fills").fetchone()[0]
    markets1 = b.db().execute("SELECT count(*) FROM orders WHERE kind='market'").fetchone()[0]
    b.messages.clear()
    b.start()
    b.wait_for("READY=1")
    time.sleep(1.0)
    assert b.stop() == 0
    db = b.db()
    assert db.execute("SELECT count(*) FROM orders WHERE kind='market'").fetchone()[0] == markets1 == 1
    n_fills = db.execute("SELECT count(*) FROM fills").fetchone()[0]
    assert n_fills >= fills1
    profit = b.kv("profit")
    assert profit["fills"] == n_fills and D(profit["realised"]) == D(b.kv("strategy")["realised"])
    venue = b.kv("paper")["venue"]
    assert venue["counters"]["trade_seq"] >= first["counters"]["trade_seq"]  # the venue continued, not reset
    open_ids = [e["client_id"] for e in venue["book"]]
    assert len(open_ids) == len(set(open_ids)) == 10


def test_stop_loss_cancels_the_grid_and_sells_at_market(bot):
    cfg = paper_config(lower_price="148", upper_price="152", levels=4, stop_loss="147.5", take_profit="152.5",
                       on_trigger="sell", fee_rate="0.0005")
    cfg["paper"] = {"seed": 5, "price": {"start_price": "150", "volatility": 0.003, "interval_s": 0.01}}
    b = bot(cfg=cfg).start()
    b.wait_for("READY=1")
    b.wait_for("| stopped")
    assert b.stop() == 0
    venue = b.kv("paper")["venue"]
    assert venue["book"] == [] and D(venue["available"]["SOL"]) < D("0.01")  # everything sold, dust only
    assert "<4>stop-loss at" in b.log() or "<4>take-profit at" in b.log()
    closes = b.db().execute("SELECT count(*) FROM orders WHERE kind='market' AND side='sell'").fetchone()[0]
    assert closes == 1


def test_bad_config_exits_78_with_one_clear_line(bot):
    b = bot(cfg=paper_config(lower_price="170")).start()
    assert b.proc.wait(15) == 78
    b.stderr.close()
    lines = b.log().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("<3>")
    assert "lower_price" in lines[0] and "bot1.json" in lines[0]


def test_missing_config_and_unusable_grid_exit_78(bot, tmp_path):
    b = bot(name="nothing").start()
    assert b.proc.wait(15) == 78
    b.stderr.close()
    assert "no such config file" in b.log()
    (tmp_path / "stderr.log").unlink()
    c = bot(name="tiny", cfg=paper_config(qty_per_level="0.001")).start()
    assert c.proc.wait(15) == 78
    c.stderr.close()
    assert "below the market minimum" in c.log()


@pytest.mark.parametrize("over", [
    {"symbol": "BTC_USDC", "lower_price": "60000", "upper_price": "70000", "qty_per_level": "0.001",
     "paper": {"price": {"start_price": "65000"}}},  # rounds to 0.00 BTC on the default paper market
    {"symbol": "BTC_USDC", "lower_price": "60000", "upper_price": "70000", "qty_per_level": "0.01"},  # price 150
    {"paper": {"initial_quote": "5", "price": {"start_price": "150"}}},  # cannot pay for a single buy
], ids=["size_below_minimum", "price_outside_range", "initial_quote_5"])
def test_the_bot_refuses_what_validate_refuses_with_the_same_words(bot, over):
    """The issue's three configs `validate` once passed: the bot's own start-up check refuses each
    with exit 78 and one journal line listing exactly the problems validate lists."""
    from gridbot.config import parse_config
    from gridbot.errors import ConfigError

    cfg = {**paper_config(), **over}
    with pytest.raises(ConfigError) as exc:
        parse_config(json.dumps(cfg), "bot1.json", feasible=True)
    problems = str(exc.value).removeprefix("bot1.json: ")
    b = bot(cfg=cfg).start()
    assert b.proc.wait(15) == 78
    b.stderr.close()
    lines = b.log().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == f"<3>not starting: the grid cannot trade on paper {cfg['symbol']}: {problems}"
    assert not (b.state_dir / "gridbot.sqlite").exists() or b.kv("strategy") is None  # no grid was written


def test_unusable_state_dir_is_one_clear_line(bot, tmp_path):
    b = bot(cfg=paper_config())
    b.state_dir = tmp_path / "file-not-dir"
    b.state_dir.write_text("x")
    b.start()
    assert b.proc.wait(15) == 1
    b.stderr.close()
    lines = b.log().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("<3>state directory") and "Traceback" not in b.log()


@pytest.mark.parametrize("key", ["strategy", "paper"])
def test_a_snapshot_of_an_unknown_version_is_refused_with_one_clear_line(bot, key):
    b = bot(cfg=paper_config()).start()
    b.wait_for("READY=1")
    assert b.stop() == 0
    db = b.db()
    snap = json.loads(db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()[0])
    (snap["venue"] if key == "paper" else snap)["v"] = 99  # as a newer gridbot might write it
    with db:
        db.execute("UPDATE kv SET value=? WHERE key=?", (json.dumps(snap), key))
    (b.tmp / "stderr.log").unlink()
    b.start()
    assert b.proc.wait(15) == 78
    b.stderr.close()
    lines = b.log().strip().splitlines()
    what = "strategy state" if key == "strategy" else "paper venue"
    assert len(lines) == 1 and lines[0].startswith("<3>not starting: the saved " + what), lines
    assert "format version 99" in lines[0] and str(b.state_dir / "gridbot.sqlite") in lines[0]
    assert "`gridbot reset bot1`" in lines[0]
    assert b.kv(key) == snap  # left as it was: nothing guessed, nothing overwritten


def test_status_port_serves_health_metrics_and_json(bot):
    port = free_port()
    b = bot(cfg=paper_config(web_port=port, web_balances=True)).start()  # balances only when enabled
    b.wait_for("READY=1")
    base = f"http://127.0.0.1:{port}"
    assert urllib.request.urlopen(base + "/healthz", timeout=5).status == 200
    metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    for name in ("gridbot_price{", "gridbot_open_orders{", "gridbot_fills_total{", "gridbot_realised_profit{",
                 'gridbot_balance{instance="bot1",symbol="SOL_USDC",asset="USDC",kind="locked"}',
                 "gridbot_last_loop_timestamp_seconds{"):
        assert name in metrics, metrics
    status = json.loads(urllib.request.urlopen(base + "/api/status", timeout=5).read())
    assert status["instance"] == "bot1" and status["open_orders"] == 10 and status["healthy"] is True
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(base + "/nope", timeout=5)
    assert exc.value.code == 404
    with socket.create_connection(("127.0.0.1", port)) as s:  # loopback only; closed without a request: no crash
        pass
    assert b.stop() == 0


def test_sighup_keeps_old_config_when_invalid_and_applies_thresholds(bot):
    b = bot(cfg=paper_config()).start()
    b.wait_for("READY=1")
    b.write_config("{ not json")
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.8)
    b.write_config(paper_config(stop_loss="120", levels=12))
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.8)
    assert b.proc.poll() is None
    assert b.stop() == 0
    log = b.log()
    assert "<4>reload: keeping the running config" in log and "malformed JSON" in log
    assert "<4>reload: levels changed; restart the instance" in log
    assert b.kv("strategy")["params"]["stop_loss"] == "120"
    assert len(b.kv("strategy")["gaps"]) == 10  # grid unchanged until restart


def test_changed_grid_is_applied_on_restart(bot):
    b = bot(cfg=paper_config(on_stop="keep")).start()
    b.wait_for("READY=1")
    assert b.stop() == 0
    b.write_config(paper_config(levels=6, on_stop="keep"))
    b.start()
    b.wait_for("READY=1")
    assert b.stop() == 0
    assert "grid parameters changed since the last run" in b.log()
    assert len(b.kv("strategy")["gaps"]) == 6
    assert len(b.kv("paper")["venue"]["book"]) == 6  # old grid's orders cancelled, not left behind


def test_paper_bot_imports_no_cli_http_or_tls_modules(bot):
    b = bot(cfg=paper_config()).start("-X", "importtime")
    b.wait_for("READY=1")
    maps = Path(f"/proc/{b.proc.pid}/maps").read_text()
    assert "libssl" not in maps and "libcrypto" not in maps  # OpenSSL never loaded (ssl, _hashlib blocked)
    assert b.stop() == 0
    imported = {line.split("|")[-1].strip() for line in b.log().splitlines() if line.startswith("import time:")}
    for banned in ("typer", "rich", "pystemd", "httpx", "cryptography"):
        assert banned not in imported, banned
    assert "pydantic" in imported and "sqlite3" in imported  # the check is actually looking


def test_published_figures_equal_the_bots_own_books(bot):
    """The figures file (what `gridbot list` reads) against the strategy snapshot in the store."""
    b = bot(cfg=paper_config(on_stop="keep", paper={"seed": 5, "price": {"start_price": "150", "volatility": 0.01,
                                                                        "interval_s": 0.01}})).start()
    b.wait_for("READY=1")
    path = b.figures_dir / "bot1.json"
    end = time.monotonic() + 20
    while time.monotonic() < end and json.loads(path.read_text())["fills"] < 2:
        time.sleep(0.3)
    assert b.stop() == 0  # the last figures are written after the shutdown
    figs, snap = json.loads(path.read_text()), b.kv("strategy")
    assert figs["fills"] == snap["fills"] >= 2
    assert D(figs["realised_profit"]) == D(snap["realised"]).quantize(D("1e-8"))
    price = D(figs["price"])
    total = D(snap["quote_delta"]) + D(snap["base_delta"]) * price
    assert D(figs["total_pnl"]) == total.quantize(D("1e-8"))
    assert figs["orders_open"] == len([g for g in snap["gaps"] if g["cid"]])
    assert figs["pairs"] == snap["pairs"] and figs["phase"] == snap["phase"]
