"""A live instance's fresh start (empty state) runs the account's fresh-start check inside the bot's
own start-up: an exchange outage then is waited out like any start during an outage (READY=1,
degraded, after the grace; /healthz 503), a pending ``gridbot reset``'s old orders are cancelled
before the grid once the exchange is back, and a lost state still ends the process with 78."""
from __future__ import annotations

import asyncio
import signal
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx

from gridbot import account
from gridbot.exchange.backpack import BackpackExchange
from gridbot.exchange.base import Side
from gridbot.bot.main import fresh_start_step
from gridbot.runner import EX_OK, RESERVED_EPOCH, Bot
from gridbot.store import Store
from gridbot_testsupport import free_port

from .conftest import PUB, SECRET, Recorder, config, posts, reaped, runner_env, sigterm, venue_ids

NAME = "t"


def adapter(cfg: Any) -> BackpackExchange:
    return BackpackExchange(cfg.backpack, cfg.symbol, PUB, SECRET, min_interval_s=0, markets_ttl_s=0,
                            backoff_base_s=0.01, max_retries=1, timeout_s=2.0)


def traded_then_reset(cfg: Any, root: Path) -> int:
    """An earlier state of NAME placed an order with its epoch and was then reset (`gridbot reset`):
    the registry asks the next start to cancel it. Returns the old order's client id."""
    c = account.claim(NAME, cfg, root)
    try:
        cid = c.new_epoch() << account.EPOCH_SHIFT | 1

        async def place() -> None:
            ex = adapter(cfg)
            try:
                await ex.place_limit(cfg.symbol, Side.buy, D(141), D("0.5"), cid)
            finally:
                await ex.close()

        asyncio.run(place())
    finally:
        c.release()
    assert account.mark_reset(root, "backpack", cfg.backpack.account, NAME, cfg.symbol)
    return cid


async def until(cond: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if got := cond():
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_fresh_start_after_a_reset_during_an_outage_is_ready_degraded_then_cancels_and_trades(fake, tmp_path):
    root = tmp_path / "accounts"
    web = free_port()
    cfg = config(fake.base_url, web_port=web)
    old = traded_then_reset(cfg, root)
    assert venue_ids(fake) == [old]
    fake.go_down("503")  # down from the start: the fresh-start check itself cannot reach the venue
    placed_before = len(posts(fake))
    c = account.claim(NAME, cfg, root)
    store = Store.open(tmp_path / "state")
    ex = adapter(cfg)
    (tmp_path / "cfg").mkdir()
    assert account.state_is_empty(store)
    rec = Recorder()
    b = Bot(NAME, cfg, store, ex, rec, tmp_path / "cfg", c.new_epoch, fresh_start=fresh_start_step(c, ex, store))
    b.start_grace_s, b.retry_base_s, b.hold_base_s = 0.3, 0.01, 0.05

    async def body() -> int:
        task = asyncio.ensure_future(b.run())
        try:
            ready = await until(lambda: [m for m in rec.sent if m.get("READY") == "1"], 10, "READY=1")
            assert len(ready) == 1 and ready[0]["STATUS"].startswith("waiting for exchange: unavailable"), ready
            async with httpx.AsyncClient() as http:
                r = await http.get(f"http://127.0.0.1:{web}/healthz")
            assert r.status_code == 503 and "waiting for exchange" in r.text, (r.status_code, r.text)
            # nothing done yet: the old order open, the reset still pending, no epoch in the state
            assert not task.done() and b.state is None and b.fresh_start is not None
            assert venue_ids(fake) == [old] and len(posts(fake)) == placed_before
            assert account.history(root, "backpack", cfg.backpack.account, NAME)["cancel_on_start"]
            assert store.get(RESERVED_EPOCH) is None
            fake.come_up()
            await until(lambda: b.state is not None and len(venue_ids(fake)) == 4, 15, "the grid")
            epoch = store.get(RESERVED_EPOCH)
            assert epoch and epoch != old >> account.EPOCH_SHIFT and b.state.epoch == epoch
            assert {cid >> account.EPOCH_SHIFT for cid in venue_ids(fake)} == {epoch}  # the old order is gone
            h = account.history(root, "backpack", cfg.backpack.account, NAME)
            assert h["epochs"] == [epoch] and not h["cancel_on_start"]
            # the reset's cancel reached the venue before the first order of the new grid
            calls = [(e["method"], e["path"]) for e in fake.log if e["path"] == "/api/v1/order"][placed_before:]
            assert ("DELETE", "/api/v1/order") in calls
            assert calls.index(("DELETE", "/api/v1/order")) < calls.index(("POST", "/api/v1/order"))
            await until(lambda: any(m.get("READY") == "1" and " orders" in m.get("STATUS", "") for m in rec.sent),
                        10, "READY=1 with the grid")
        finally:
            if not task.done():
                b._request_stop(signal.SIGTERM)
        return await asyncio.wait_for(task, 30)

    try:
        assert asyncio.run(body()) == EX_OK
    finally:
        store.close()
        c.release()


def test_sigterm_while_the_fresh_start_check_waits_stops_at_once_and_leaves_the_reset_pending(fake, tmp_path):
    root = tmp_path / "accounts"
    cfg = config(fake.base_url)
    old = traded_then_reset(cfg, root)
    placed_before = len(posts(fake))
    fake.go_down("refuse")
    c = account.claim(NAME, cfg, root)
    store = Store.open(tmp_path / "state")
    ex = adapter(cfg)
    (tmp_path / "cfg").mkdir()
    b = Bot(NAME, cfg, store, ex, Recorder(), tmp_path / "cfg", c.new_epoch,
            fresh_start=fresh_start_step(c, ex, store))
    b.retry_base_s = 0.01

    async def body() -> int:
        task = asyncio.ensure_future(b.run())
        await until(lambda: b._failing, 10, "an exchange failure")
        b._request_stop(signal.SIGTERM)
        return await asyncio.wait_for(task, 5)

    try:
        assert asyncio.run(body()) == EX_OK
        fake.come_up()
        assert venue_ids(fake) == [old] and len(posts(fake)) == placed_before  # nothing placed or cancelled
        assert account.state_is_empty(store)  # the next start is a fresh start again, the reset still pending
        assert account.history(root, "backpack", cfg.backpack.account, NAME)["cancel_on_start"]
    finally:
        store.close()
        c.release()


def test_a_lost_state_still_exits_78_naming_gridbot_reset_even_while_the_exchange_is_down(fake, tmp_path):
    import subprocess
    import sys

    from .conftest import keys

    env = runner_env(tmp_path, fake.base_url, keys())
    cfg = config(fake.base_url)
    c = account.claim("bp1", cfg, tmp_path / "state" / ".accounts")  # bp1 traded before: an epoch recorded
    c.new_epoch()
    c.release()
    fake.go_down("refuse")
    with reaped(subprocess.Popen([sys.executable, "-m", "gridbot.runner", "bp1"], env=env, cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)) as proc:
        try:
            out = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            out = sigterm(proc)
            raise AssertionError(f"a lost state did not end the process:\n{out}") from None
    assert proc.returncode == 78, out
    lines = [line for line in out.splitlines() if "run `gridbot reset bp1`" in line]
    assert len(lines) == 1 and "not starting: the state of bp1 is missing or empty" in lines[0], out
    assert "Traceback" not in out and "crashed" not in out, out
    fake.come_up()
    assert not fake.open_orders()
