"""Each instance owns exactly its orders, fills and coins (issue 8): the runner's ``Bot`` in-process, over
the paper venue, a two-market paper account and the fake Backpack server."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Optional

from gridbot import strategy as st
from gridbot.exchange import _sign
from gridbot.exchange.base import Balance, Fill, Market, Order, OrderStatus, Side
from gridbot.exchange.factory import open_exchange
from gridbot.exchange.paper import PaperVenue
from gridbot.models import GridConfig
from gridbot.notify import Notifier
from gridbot.runner import START_SLACK_MS, Bot, paper_venue
from gridbot.store import CANCELLED, CLOSED, FILLED, NOT_PLACED, OPEN, Store
from gridbot_testsupport.fake_backpack import FakeBackpack

SECRET = base64.b64encode(bytes(range(32))).decode()
PUB = _sign.public_key_b64(_sign.load_private_key(SECRET))


def config(**over: Any) -> GridConfig:
    """A 4-level SOL_USDC grid: lines 140 145 150 155 160, price 150 (buys 140/145, sells 155/160)."""
    d: dict[str, Any] = {"symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160", "levels": 4,
                         "qty_per_level": "0.5", "on_stop": "keep", "paper": {"price": {"start_price": "150"}}}
    paper = over.pop("paper", {})
    d.update(over)
    d["paper"] = {**d["paper"], **paper}
    return GridConfig.model_validate(d)


class Epochs:
    """A stand-in for the account's epoch registry: hands out 5, 6, 7... and remembers what it gave."""

    def __init__(self, first: int = 5) -> None:
        self.next, self.given = first, []

    def __call__(self) -> int:
        self.given.append(self.next)
        self.next += 1
        return self.given[-1]


def open_bot(tmp: Path, cfg: GridConfig, epochs: Epochs, ex: Any = None) -> Bot:
    """What ``_amain`` builds, minus signals and systemd."""
    store = Store.open(tmp)
    if ex is None:
        saved, ids = paper_venue(store, cfg)
        ex = open_exchange(cfg, tmp, saved=saved, save=lambda d: store.put("paper", d))
        if ids:
            ex.venue.continue_ids(*ids)
    (tmp / "cfg").mkdir(exist_ok=True)
    return Bot("t", cfg, store, ex, Notifier(""), tmp / "cfg", epochs)


async def start(bot: Bot) -> None:
    """``Bot.run`` up to READY."""
    await bot.open_state()
    await bot.reconcile()
    await bot.execute(bot.apply([st.Tick(bot.price), st.Resume()]))  # type: ignore[arg-type]
    await bot.cycle()


async def move(bot: Bot, price: str) -> None:
    bot.ex.venue.set_price(D(price))
    await bot.cycle()


def open_ids(bot: Bot) -> set[int]:
    return {o.client_id for o in bot.ex.venue.open_orders()}


# ------------------------------------------------------------------ order identity

def test_client_ids_carry_the_epoch_persist_across_restart_and_move_on_when_used_up(tmp_path):
    epochs = Epochs(5)
    cfg = config()
    b = open_bot(tmp_path, cfg, epochs)

    async def first() -> set[int]:
        await start(b)
        await b.shutdown()
        return open_ids(b)

    ids = asyncio.run(first())
    b.store.close()
    assert len(ids) == 4 and all(c >> st.COUNTER_BITS == 5 for c in ids)
    b = open_bot(tmp_path, cfg, epochs)

    async def second() -> tuple[set[int], set[int]]:
        await start(b)
        assert epochs.given == [5]  # the restored state keeps its epoch and counter
        await move(b, "145")  # the buy at 145 fills: its counter-sell continues epoch 5's counter
        new = open_ids(b) - ids
        b.state.next_cid = st.COUNTER_MAX - st.EPOCH_HEADROOM + 1  # nearly used up
        await move(b, "140")
        newer = open_ids(b) - ids - new
        await b.shutdown()
        return new, newer

    new, newer = asyncio.run(second())
    assert len(new) == 1 and all(c >> st.COUNTER_BITS == 5 and c & st.COUNTER_MAX == 6 for c in new)
    assert len(newer) == 1 and all(c == st.client_id(6, 1) for c in newer)
    assert epochs.given == [5, 6]
    assert b.store.get("strategy")["epoch"] == 6
    recorded = [r.client_id for r in b.store.orders()]
    assert len(recorded) == len(set(recorded)) == 7  # rebalance + 4 + 2 counter-orders


def test_a_fill_of_an_order_we_did_not_place_is_not_booked(tmp_path):
    b = open_bot(tmp_path, config(), Epochs())
    asyncio.run(start(b))
    row = next(r for r in b.store.orders(OPEN) if r.side == "buy")
    assert row.order_id.startswith("P") and row.symbol == "SOL_USDC" and row.exchange == "paper"
    before = (b.state.fills, b.state.inventory, b.state.quote_delta, b.store.fill_count())
    assert row.price is not None
    theirs = Fill("x1", row.client_id, "SOL_USDC", Side.buy, row.price, row.qty, D(0), "SOL", True, 1,
                  order_id="BP-other-instance")
    other_market = replace(theirs, trade_id="x2", symbol="SOL_USDT", order_id=row.order_id)
    assert b.apply([], [theirs, other_market]) == []
    assert (b.state.fills, b.state.inventory, b.state.quote_delta, b.store.fill_count()) == before
    assert not b.store.has_fill("x1") and not b.store.has_fill("x2")
    # the control: the same fill under the order id the venue gave us is ours
    b.apply([], [replace(theirs, trade_id="x3", order_id=row.order_id)])
    assert b.state.fills == before[0] + 1 and b.store.order(row.client_id).status == FILLED
    assert b.state.inventory == before[1] + row.qty and b.store.has_fill("x3")


def test_fills_are_read_from_the_states_start_never_from_zero(tmp_path):
    b = open_bot(tmp_path, config(), Epochs())
    seen: list[int] = []
    real = b.ex.fills_since

    async def spy(symbol: str, since_ms: int) -> list[Fill]:
        seen.append(since_ms)
        return await real(symbol, since_ms)

    b.ex.fills_since = spy  # type: ignore[method-assign]
    asyncio.run(start(b))
    started = b.store.get("started_ms")
    assert seen and started > 0 and min(seen) == started - START_SLACK_MS


def test_fills_are_read_from_the_states_start_on_backpack(tmp_path):
    from gridbot.exchange.backpack import BackpackExchange

    with FakeBackpack(PUB, balances={"SOL": D(10), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        fake.set_price(D(150))
        cfg = config(exchange="backpack", backpack={"base_url": fake.base_url})
        ex = BackpackExchange(cfg.backpack, cfg.symbol, PUB, SECRET, min_interval_s=0)
        b = open_bot(tmp_path, cfg, Epochs(), ex=ex)

        async def go() -> None:
            try:
                await start(b)
            finally:
                await ex.close()

        asyncio.run(go())
        froms = [int(e["params"]["from"]) for e in fake.log if e["path"] == "/wapi/v1/history/fills"]
        started = b.store.get("started_ms")
        assert froms and min(froms) >= started - START_SLACK_MS > 0
        assert {o.client_id >> st.COUNTER_BITS for o in fake.open_orders()} == {5}


# ------------------------------------------------------------------ coins

def test_stop_loss_sell_sells_only_the_grids_own_coins_not_the_users(tmp_path):
    cfg = config(stop_loss="138", on_trigger="sell", paper={"initial_base": "10"})
    b = open_bot(tmp_path, cfg, Epochs())

    async def go() -> None:
        await start(b)
        assert b.state.base_start == 0  # the user's 10 SOL are not the grid's
        await move(b, "137")  # both buys fill, then the stop-loss fires
        await b.cycle()

    asyncio.run(go())
    assert b.state.phase == st.STOPPED and b.ex.venue.open_orders() == []
    buys = [r for r in b.store.orders() if r.kind == "market" and r.side == "buy"]
    (close,) = [r for r in b.store.orders() if r.kind == "market" and r.side == "sell"]
    own = sum((r.qty for r in buys), D(0)) + 2 * D("0.5")  # the rebalance buy and the two grid buys
    assert D("1.9") < close.qty <= own
    sol = b.ex.venue.balances()["SOL"]
    assert D(10) <= sol.total < D("10.01")  # the user's 10 SOL are still there, plus the grid's fee dust
    assert b.state.closing == "" and b.state.note.startswith("close done")


def test_a_rejected_close_is_retried_capped_by_what_the_venue_holds(tmp_path, caplog):
    cfg = config(stop_loss="138", on_trigger="sell")
    b = open_bot(tmp_path, cfg, Epochs())
    closing_when_asked: list[str] = []
    real = b.ex.balances

    async def spy() -> dict[str, Balance]:
        closing_when_asked.append(b.state.closing if b.state else "")
        return await real()

    async def go() -> None:
        await start(b)
        b.ex.venue.set_price(D("137"))  # both buys fill at the venue...
        b.ex.venue.transfer("SOL", -D("0.4"))  # ...and the user moves 0.4 SOL away before the bot looks
        b.ex.balances = spy  # type: ignore[method-assign]
        await b.cycle()

    with caplog.at_level(logging.INFO, logger="gridbot"):
        asyncio.run(go())
    sells = [r for r in b.store.orders() if r.kind == "market" and r.side == "sell"]
    assert [r.status for r in sells] == ["rejected", OPEN] or [r.status for r in sells] == ["rejected", FILLED]
    first, retry = sells
    assert retry.qty < first.qty and retry.qty == D("1.60")  # capped by the 1.60x SOL the venue holds
    assert "pending: rejected, retrying" in closing_when_asked  # the state said so until it was done
    assert any("close pending: sell of" in r.getMessage() and "rejected" in r.getMessage() for r in caplog.records)
    assert b.state.closing == "" and b.state.note.startswith("close done")
    assert b.ex.venue.balances()["SOL"].total < D("0.01")


# ------------------------------------------------------------------ changing what a grid is

class TwoMarkets:
    """One paper account on two markets (separate books): an ``Exchange`` that records every order call."""

    taker_fee = D("0.001")
    rate_limited = False

    def __init__(self) -> None:
        self.v = {
            "SOL_USDC": PaperVenue(Market("SOL_USDC", "SOL", "USDC", D("0.01"), D("0.01"), D("0.01")),
                                   {"USDC": D(10000)}, D("0.0008"), D("0.001")),
            "ETH_USDC": PaperVenue(Market("ETH_USDC", "ETH", "USDC", D("0.01"), D("0.01"), D("0.01")),
                                   {"USDC": D(10000)}, D("0.0008"), D("0.001")),
        }
        self.v["SOL_USDC"].set_price(D(150))
        self.v["ETH_USDC"].set_price(D(3000))
        self.calls: list[tuple[str, str, int]] = []

    async def market(self, symbol: str) -> Market:
        return self.v[symbol].market

    async def last_price(self, symbol: str) -> D:
        return self.v[symbol].last_price  # type: ignore[return-value]

    async def place_limit(self, symbol: str, side: Side, price: D, qty: D, client_id: int,
                          post_only: bool = True) -> Order:
        self.calls.append(("place", symbol, client_id))
        return self.v[symbol].place_limit(side, price, qty, client_id, post_only)

    async def place_market(self, symbol: str, side: Side, qty: D, client_id: int) -> Order:
        self.calls.append(("market", symbol, client_id))
        return self.v[symbol].place_market(side, qty, client_id)

    async def cancel(self, symbol: str, client_id: int) -> None:
        self.calls.append(("cancel", symbol, client_id))
        self.v[symbol].cancel(client_id)

    async def get_order(self, symbol: str, client_id: int) -> Optional[Order]:
        self.calls.append(("get", symbol, client_id))
        return self.v[symbol].get_order(client_id)

    async def open_orders(self, symbol: str) -> list[Order]:
        return self.v[symbol].open_orders()

    async def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        return self.v[symbol].fills_since(since_ms)

    async def balances(self) -> dict[str, Balance]:
        return self.v["SOL_USDC"].balances()

    async def wait_event(self, timeout: float) -> None:
        pass

    async def close(self) -> None:
        pass


def test_a_symbol_change_cancels_the_old_grid_on_the_old_symbol(tmp_path, caplog):
    ex, epochs = TwoMarkets(), Epochs()
    b = open_bot(tmp_path, config(), epochs, ex=ex)

    async def first() -> None:
        await start(b)
        await b.shutdown()  # on_stop=keep: the SOL grid stays on the book

    asyncio.run(first())
    b.store.close()
    old = {o.client_id for o in ex.v["SOL_USDC"].open_orders()}
    assert len(old) == 4
    ex.calls.clear()
    cfg = config(symbol="ETH_USDC", lower_price="2800", upper_price="3200", qty_per_level="0.1")
    b = open_bot(tmp_path, cfg, epochs, ex=ex)
    with caplog.at_level(logging.INFO, logger="gridbot"):
        asyncio.run(start(b))
    assert ex.v["SOL_USDC"].open_orders() == []  # nothing left open, funds unlocked
    assert ex.v["SOL_USDC"].balances()["SOL"].locked == 0 and ex.v["SOL_USDC"].balances()["USDC"].locked == 0
    assert {c for op, sym, c in ex.calls if op == "cancel" and sym == "SOL_USDC"} == old
    assert not [c for op, sym, c in ex.calls if sym == "ETH_USDC" and c in old]  # never looked up under ETH
    assert all(r.status in CLOSED for r in b.store.orders() if r.symbol == "SOL_USDC")
    assert len(ex.v["ETH_USDC"].open_orders()) == 4 and b.state.p.base == "ETH"
    assert epochs.given == [5, 6]
    assert any("cancelling 4 orders of the old grid on paper SOL_USDC" in r.getMessage() for r in caplog.records)


def test_an_old_grid_on_a_live_venue_blocks_a_switch_to_paper(tmp_path):
    from gridbot.errors import ConfigError

    ex = TwoMarkets()
    b = open_bot(tmp_path, config(), Epochs(), ex=ex)
    asyncio.run(start(b))
    b.store.put("grid", {**b.store.get("grid"), "exchange": "backpack"})  # as if it had run on backpack
    b.store.db.execute("UPDATE orders SET exchange='backpack'")
    b.state = None
    try:
        asyncio.run(b.open_state())
    except ConfigError as exc:
        assert "still open on backpack SOL_USDC" in str(exc) and "gridbot reset t" in str(exc)
    else:
        raise AssertionError("switching away from a venue with open orders must refuse")
    assert b.store.orders(OPEN)  # nothing marked closed that is still open


def test_sighup_thresholds_that_fit_only_a_new_range_change_nothing(tmp_path, caplog):
    cfg = config(stop_loss="130", take_profit="170")
    b = open_bot(tmp_path, cfg, Epochs())
    asyncio.run(start(b))
    conf = tmp_path / "cfg" / "t.json"

    def reload(**over: Any) -> list[str]:
        d = {**cfg.model_dump(mode="json", exclude_none=True, by_alias=True), **over}
        d.pop("$schema", None)
        conf.write_text(json.dumps(d))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gridbot"):
            b.reload()
        return [r.getMessage() for r in caplog.records if "reload: keeping stop_loss" in r.getMessage()]

    # valid for a 170..190 grid, but the running grid is 140..160: the stop-loss would fire at once
    lines = reload(lower_price="170", upper_price="190", stop_loss="165", take_profit="195", on_stop="cancel")
    assert len(lines) == 1 and "stop_loss 165 is not below the running grid's lowest line 140" in lines[0]
    assert (b.state.p.stop_loss, b.state.p.take_profit) == (D(130), D(170))
    assert (b.cfg.stop_loss, b.cfg.take_profit) == (D(130), D(170))
    assert b.cfg.on_stop.value == "cancel"  # what does fit is still applied
    # valid for a 100..120 grid: its take-profit sits below the running price
    lines = reload(lower_price="100", upper_price="120", stop_loss="90", take_profit="125")
    assert len(lines) == 1 and "take_profit 125 is not above the running grid's highest line 160" in lines[0]
    assert b.state.p.take_profit == D(170) and b.state.phase == st.RUNNING
    # thresholds that fit the running grid are applied
    assert reload(stop_loss="135", take_profit="175") == []
    assert (b.state.p.stop_loss, b.state.p.take_profit) == (D(135), D(175))


# ------------------------------------------------------------------ paper settings

def test_changed_paper_settings_rebuild_the_simulated_venue(tmp_path, caplog):
    epochs = Epochs()
    b = open_bot(tmp_path, config(), epochs)

    async def first() -> None:
        await start(b)
        await move(b, "145")  # one fill, so the new venue must number trades after it
        await b.shutdown()

    asyncio.run(first())
    old_orders = {r.client_id for r in b.store.orders()}
    old_trades = {t[0] for t in b.store.fills()}
    b.store.close()
    assert old_trades
    cfg = config(paper={"min_qty": "0.1", "initial_quote": "5000"})
    with caplog.at_level(logging.INFO, logger="gridbot"):
        b = open_bot(tmp_path, cfg, epochs)
        asyncio.run(start(b))
    venue = b.ex.venue
    assert venue.market.min_qty == D("0.1")  # the fixed minimum is in force, not the old one
    assert any("paper settings changed (initial_quote, min_qty): rebuilding" in r.getMessage()
               for r in caplog.records)
    assert not open_ids(b) & old_orders and len(open_ids(b)) == 4
    assert all(r.status in CLOSED for r in b.store.orders() if r.client_id in old_orders)
    assert epochs.given == [5, 6] and b.state.fills == 1  # a fresh grid: only the new rebalance buy
    assert {t[0] for t in b.store.fills()} - old_trades  # new venue's trade ids did not collide
    sol, usdc = venue.balances()["SOL"], venue.balances()["USDC"]
    assert b.state.base_delta == sol.total and b.state.quote_delta == usdc.total - 5000  # books == venue
    # and the rebuilt venue is kept: an unchanged restart does not rebuild again
    b.store.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gridbot"):
        b = open_bot(tmp_path, cfg, epochs)
        asyncio.run(start(b))
    assert not any("rebuilding" in r.getMessage() for r in caplog.records) and epochs.given == [5, 6]


def test_not_placed_rows_of_an_old_grid_are_closed_not_sent(tmp_path):
    """A crash between writing an intent and sending it, then a re-grid: the intent is never sent."""
    ex = TwoMarkets()
    b = open_bot(tmp_path, config(), Epochs(), ex=ex)
    asyncio.run(start(b))
    b.store.add_intent(st.client_id(5, 999), "limit", "buy", D(140), D("0.5"), 0, exchange="paper",
                       symbol="SOL_USDC")
    b.store.close()
    b = open_bot(tmp_path, config(levels=2), Epochs(9), ex=ex)
    asyncio.run(start(b))
    assert b.store.order(st.client_id(5, 999)).status == NOT_PLACED
    assert ("place", "SOL_USDC", st.client_id(5, 999)) not in ex.calls
    assert all(r.status == CANCELLED or r.status in CLOSED for r in b.store.orders() if r.client_id >> 18 == 5)


def test_a_state_saved_before_epochs_keeps_its_grid_and_takes_an_epoch(tmp_path):
    epochs, cfg = Epochs(5), config()
    b = open_bot(tmp_path, cfg, epochs)

    async def first() -> None:
        await start(b)
        await b.shutdown()

    asyncio.run(first())
    before = open_ids(b)
    snap = b.store.get("strategy")
    del snap["epoch"], snap["close_retry"], snap["close_rejects"]  # as an older version wrote it
    b.store.put("strategy", snap)
    for key in ("paper_cfg", "started_ms", "epoch"):
        b.store.delete(key)
    b.store.db.execute("UPDATE orders SET order_id='', exchange='', symbol=''")
    b.store.close()
    b = open_bot(tmp_path, cfg, epochs)

    async def second() -> None:
        await start(b)
        await move(b, "145")

    asyncio.run(second())
    assert before <= open_ids(b) | {c for c in before if b.store.order(c).status == FILLED}  # no re-grid
    new = open_ids(b) - before
    assert epochs.given == [5, 6] and new and all(c >> st.COUNTER_BITS == 6 for c in new)
    assert b.store.get("started_ms") == b.store.first_order_ms()
    assert all(r.symbol == "SOL_USDC" and r.exchange == "paper" for r in b.store.orders())


def test_a_venue_saved_before_paper_fingerprints_is_rebuilt_only_if_its_rules_differ(tmp_path, caplog):
    epochs = Epochs()
    b = open_bot(tmp_path, config(), epochs)
    asyncio.run(start(b))
    b.store.delete("paper_cfg")  # as an older version left it
    b.store.close()
    b = open_bot(tmp_path, config(), epochs)  # same rules: kept
    asyncio.run(start(b))
    assert epochs.given == [5] and b.store.get("paper_cfg") is not None
    b.store.delete("paper_cfg")
    b.store.close()
    with caplog.at_level(logging.INFO, logger="gridbot"):
        b = open_bot(tmp_path, config(paper={"step_size": "0.1"}), epochs)
        asyncio.run(start(b))
    assert any("paper settings changed (step_size): rebuilding" in r.getMessage() for r in caplog.records)
    assert b.ex.venue.market.step_size == D("0.1") and epochs.given == [5, 6]


def test_reconcile_neither_adopts_nor_cancels_an_order_that_only_shares_our_client_id(tmp_path):
    b = open_bot(tmp_path, config(), Epochs())
    asyncio.run(start(b))
    row = next(r for r in b.store.orders(OPEN) if r.side == "buy")
    v = b.ex.venue
    # ours is gone and another state's order now holds the same client id (Backpack allows reuse)
    v._orders[row.client_id] = replace(v._orders[row.client_id], exchange_id="BP-other")
    asyncio.run(b.reconcile())
    assert v.get_order(row.client_id).status is OrderStatus.open  # theirs: left alone
    assert row.client_id not in b.state.by_cid and b.store.order(row.client_id).status == CANCELLED
    assert "cancelled outside the bot" in b.state.note  # how the strategy treats an order gone behind its back
    asyncio.run(b.cycle())
    assert v.get_order(row.client_id).status is OrderStatus.open and b.state.fills == 1  # still theirs, unbooked
