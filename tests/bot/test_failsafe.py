"""Issue 10, item 12: the state stops being writable while the bot trades (disk full)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3

import pytest

from gridbot import config as cfgmod
from gridbot import runner
from gridbot.exchange.factory import open_exchange
from gridbot.notify import Notifier
from gridbot.store import Store, StoreError

from .conftest import BotProc, paper_config

CFG = {"exchange": "paper", "symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160", "levels": 10,
       "qty_per_level": "0.5", "paper": {"seed": 3, "price": {"start_price": "150", "volatility": 0.004,
                                                             "interval_s": 0.01}}}


@contextlib.contextmanager
def _disk_full():
    raise sqlite3.OperationalError("database or disk is full")
    yield  # pragma: no cover


@pytest.mark.parametrize("on_stop", ["cancel", "keep"])
def test_disk_full_stops_trading_applies_on_stop_and_fails_with_one_line(tmp_path, on_stop):
    cfg = cfgmod.parse_config(json.dumps({**CFG, "on_stop": on_stop}), "x.json")
    store = Store.open(tmp_path)
    ex = open_exchange(cfg, tmp_path)
    bot = runner.Bot("x", cfg, store, ex, Notifier(address=""), tmp_path, runner.store_epochs(store))

    async def main():
        task = asyncio.ensure_future(runner.run_guarded(bot))
        for _ in range(500):  # until the grid rests on the venue
            await asyncio.sleep(0.01)
            if bot.state is not None and len(await ex.open_orders("SOL_USDC")) >= 5:
                break
        store.tx = _disk_full  # the next write fails, as on a full filesystem
        resting = {o.client_id for o in await ex.open_orders("SOL_USDC")}
        with pytest.raises(StoreError) as exc:
            await asyncio.wait_for(task, 20)
        return resting, str(exc.value), await ex.open_orders("SOL_USDC")

    resting, msg, left = asyncio.run(main())
    store.close()
    assert len(resting) >= 5
    assert "\n" not in msg and "disk is full" in msg and "stopped placing orders" in msg
    assert {o.client_id for o in left} <= resting  # no order placed once the disk was full
    if on_stop == "cancel":
        assert left == [] and "on_stop=cancel: cancelled" in msg, msg
    else:
        assert len(left) >= 5 and "on_stop=keep" in msg, msg


# -- item 3: a (re)start racing an editor's truncate-then-write -------------------------------------
def test_bot_started_mid_write_reads_the_config_once_more(tmp_path):
    import time

    b = BotProc(tmp_path, cfg="")  # truncated: the editor has not written yet
    try:
        b.start()
        time.sleep(0.7)  # the bot's first read (~0.2 s after exec) sees the truncated file
        b.write_config(paper_config())  # ... and now it has
        assert "READY=1" in b.wait_for("READY=1", timeout=20)
        assert b.stop() == 0
    finally:
        b.close()


def test_bot_with_a_config_broken_for_good_still_exits_78(tmp_path):
    b = BotProc(tmp_path, cfg='{"symbol": "SOL_USDC"}')
    try:
        b.start()
        assert b.proc.wait(20) == 78
        assert "not starting" in b.log() and "Traceback" not in b.log()
    finally:
        b.close()
