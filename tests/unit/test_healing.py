"""Issue 9: the grid heals itself on a real venue. The runner's ``Bot`` in-process, through the real
Backpack adapter, against the fake Backpack server (tests/fake_backpack.py) and its side doors."""
from __future__ import annotations

import asyncio
import base64
import logging
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Callable

import pytest

from gridbot import runner
from gridbot import strategy as st
from gridbot.exchange import _sign
from gridbot.exchange.backpack import BackpackExchange
from gridbot.models import GridConfig
from gridbot.notify import Notifier
from gridbot.runner import Bot
from gridbot.status_http import StatusServer, metrics_text
from gridbot.store import CANCELLED, OPEN, REJECTED, Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_backpack import FakeBackpack  # noqa: E402

SECRET = base64.b64encode(bytes(range(32))).decode()
PUB = _sign.public_key_b64(_sign.load_private_key(SECRET))
OTHER_SECRET = base64.b64encode(bytes(range(100, 132))).decode()


def config(url: str, **over: Any) -> GridConfig:
    """4 levels on SOL_USDC: lines 140 145 150 155 160 around 150 (buys 140/145, sells 155/160)."""
    d: dict[str, Any] = {"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160",
                         "levels": 4, "qty_per_level": "0.5", "on_stop": "keep", "reconcile_interval_s": 1,
                         "backpack": {"base_url": url, "poll_interval_s": 0.2}}
    d.update(over)
    return GridConfig.model_validate(d)


@pytest.fixture
def fake():
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as f:
        yield f


def make_bot(tmp: Path, fake: FakeBackpack, cfg: GridConfig | None = None, **adapter: Any) -> Bot:
    adapter.setdefault("min_interval_s", 0)
    adapter.setdefault("markets_ttl_s", 0)  # re-read market rules on every reconcile
    adapter.setdefault("backoff_base_s", 0.01)
    adapter.setdefault("max_retries", 1)
    adapter.setdefault("timeout_s", 2.0)
    cfg = cfg or config(fake.base_url)
    ex = BackpackExchange(cfg, PUB, SECRET, **adapter)
    (tmp / "cfg").mkdir(exist_ok=True)
    epochs = iter(range(5, 1000))
    b = Bot("t", cfg, Store.open(tmp), ex, Notifier(""), tmp / "cfg", lambda: next(epochs))
    b.hold_base_s, b.retry_base_s = 0.05, 0.01
    return b


async def start(b: Bot) -> None:
    import asyncio as aio

    b._stop_event = aio.Event()
    assert await b.start_up()


def run(b: Bot, body: Callable[[], Any]) -> Any:
    async def main() -> Any:
        try:
            return await body()
        finally:
            await b.ex.close()
    return asyncio.run(main())


def reconcile_due(b: Bot) -> None:
    b._reconciled_at = -1e9


def venue_ids(fake: FakeBackpack) -> list[int]:
    return sorted(o.client_id for o in fake.open_orders())


def posts(fake: FakeBackpack) -> list[dict]:
    return [e["params"] for e in fake.log if e["method"] == "POST" and e["path"] == "/api/v1/order"]


def books_agree(b: Bot, fake: FakeBackpack) -> None:
    """The bot's live orders are exactly ours open on the venue, each once, at the prices it thinks."""
    live = b.state.live()
    venue = {o.client_id: o for o in fake.open_orders()}
    assert sorted(live) == sorted(venue), (sorted(live), sorted(venue))
    assert len(fake.open_orders()) == len(venue)  # no client id twice
    for cid, (_g, side, price, _rest) in live.items():
        assert venue[cid].price == price and venue[cid].side == ("Bid" if side is st.BUY else "Ask")
    rows = {r.client_id for r in b.store.orders(OPEN)}
    assert set(live) <= rows


# ------------------------------------------------------------------ 1. every answer understood

def test_a_post_only_expired_answer_is_a_rejection_learnt_at_once_and_the_level_comes_back(fake, tmp_path, caplog):
    b = make_bot(tmp_path, fake)
    real = b.ex.place_limit
    crossed: list[int] = []

    async def crossing(symbol, side, price, qty, client_id, post_only=True):
        if side is st.SELL and price == D(150) and not crossed:  # the market jumps just before our post-only sell
            crossed.append(client_id)
            fake.set_price(D(151))
        return await real(symbol, side, price, qty, client_id, post_only)

    b.ex.place_limit = crossing  # type: ignore[method-assign]

    async def body() -> None:
        await start(b)
        fake.set_price(D(145))  # the buy at 145 fills; its counter-sell at 150 meets a jump to 151
        await b.cycle()
        (cid,) = crossed
        row = b.store.order(cid)
        assert row.status == REJECTED and "Expired" in row.note
        assert cid not in b.state.by_cid and b.state.held and b.snapshot()["missing_levels"] == 1
        fake.set_price(D(148))
        await asyncio.sleep(0.1)  # the hold (0.05 s) passes
        await b.cycle()
        assert not b.state.held and b.snapshot()["missing_levels"] == 0
        books_agree(b, fake)
        assert any(o.price == D(150) and o.side == "Ask" for o in fake.open_orders())

    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, body)
    assert any("closed by the venue at once: Expired" in r.getMessage() for r in caplog.records)


def test_a_market_rebalance_that_expires_books_its_part_and_never_sticks_even_across_restarts(fake, tmp_path, caplog):
    fake.account.markets["SOL_USDC"].liquidity = D("0.6")  # one sell's worth of base, of the 1.0 wanted
    b = make_bot(tmp_path, fake)
    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, lambda: start(b))
    assert b.state.phase == st.RUNNING and not b.state.markets
    (m,) = [r for r in b.store.orders() if r.kind == "market"]
    assert m.status == CANCELLED and m.filled == D("0.6")
    assert b.state.inventory == D("0.6") - D("0.6") * D("0.001")  # the part that filled, net of the taker fee
    assert [o.side for o in fake.open_orders()].count("Ask") == 1 and b.snapshot()["missing_levels"] == 1
    warn = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("market order" in w and "ended cancelled with 0.6 of" in w for w in warn), warn
    assert any("sell levels stay empty" in w for w in warn), warn
    books_agree(b, fake)
    b.store.close()

    # a state an older runner left stuck in `rebalancing` (its market order Expired on the venue) is settled
    tmp2 = tmp_path / "old"
    tmp2.mkdir()
    b = make_bot(tmp2, fake)

    async def stuck() -> None:
        b._market_ended = lambda cid, o: []  # type: ignore[method-assign]  # what the old runner did: nothing
        await start(b)

    run(b, stuck)
    assert b.state.phase == st.REBALANCING and b.state.markets
    b.store.close()
    b = make_bot(tmp2, fake)
    run(b, lambda: start(b))
    assert b.state.phase == st.RUNNING and not b.state.markets


# ------------------------------------------------------------------ 2. continuous reconciliation

def test_orders_cancelled_behind_the_bots_back_are_placed_again_by_the_periodic_reconcile(fake, tmp_path):
    b = make_bot(tmp_path, fake)

    async def body() -> None:
        await start(b)
        before = venue_ids(fake)
        assert len(before) == 4
        assert fake.cancel_all("SOL_USDC") == 4  # the web UI, a maintenance
        await b.cycle()  # not due yet: the bot does not know
        assert venue_ids(fake) == [] and len(b.state.by_cid) == 4
        reconcile_due(b)
        await b.cycle()
        after = venue_ids(fake)
        assert len(after) == 4 and not set(after) & set(before)
        books_agree(b, fake)
        assert all(b.store.order(c).status == CANCELLED for c in before)

    run(b, body)


def test_reconcile_runs_on_its_cadence_and_costs_two_requests(fake, tmp_path):
    b = make_bot(tmp_path, fake, cfg=config(fake.base_url, reconcile_interval_s=1))

    async def body() -> int:
        await start(b)
        n = len(fake.log)
        t0 = time.monotonic()
        cycles = 0
        while time.monotonic() - t0 < 2.5:
            await b.cycle()
            cycles += 1
            await asyncio.sleep(0.05)
        return cycles, fake.log[n:]

    cycles, log = run(b, body)
    opens = [e for e in log if e["path"] == "/api/v1/orders"]
    fills = [e for e in log if e["path"] == "/wapi/v1/history/fills"]
    assert 2 <= len(opens) <= 3  # one per second, not one per cycle
    assert len(fills) == cycles + len(opens)  # each cycle reads fills once, each reconcile once more


def test_late_fills_are_caught_by_the_reconcile_and_system_fills_never_booked(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "FILL_OVERLAP_MS", 0)  # the poll re-reads nothing before the last fill
    b = make_bot(tmp_path, fake)

    async def body() -> None:
        await start(b)
        fills0 = b.state.fills
        fake.hide_fills(True)
        fake.set_price(D(145))  # the buy at 145 fills, but the venue shows it late
        fake.hide_fills(False)
        await asyncio.sleep(0.02)
        fake.set_price(D(156))  # ... after this sell's fill, which is shown at once
        await b.cycle()
        assert b.state.fills == fills0 + 1  # the poll saw only the sell
        fake.system_fill("SOL_USDC", "Bid", D("0.2"))  # a collateral conversion: not ours
        assert fake.reveal() == 1
        await b.cycle()
        assert b.state.fills == fills0 + 1  # the poll reads from the last fill on: still missed
        reconcile_due(b)
        await b.cycle()
        assert b.state.fills == fills0 + 2  # the reconcile's look-back found it, with its true time
        books_agree(b, fake)

    run(b, body)
    assert b.store.fill_count() == b.state.fills
