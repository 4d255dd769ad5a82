"""Idle levels are refilled: a rebalance that ended short leaves sells without base (idle gaps);
``Refill`` gives idle gaps orders again, buying at market only what the idle sells lack."""
import json
from decimal import Decimal as D

import pytest

from gridbot import strategy as st
from gridbot.exchange.base import Side
from gridbot.grid import price_lines, tick_levels

TICK = D("0.01")


def params(**kw) -> st.Params:  # lines 90 95 100 105 110; qty 1, step and min 0.01, market fee 0.1 %
    lv = tick_levels(price_lines(D(90), D(110), 4), TICK)
    return st.Params(lv.buy, lv.sell, D(1), D("0.01"), D("0.01"), "SOL", "USDC", **kw)


def places(intents):
    return [i for i in intents if isinstance(i, st.Place)]


def markets(intents):
    return [i for i in intents if isinstance(i, st.Market)]


def short_start(filled: D, **kw):
    """Start at 100 with no base (the sells at 105 and 110 need 2): the rebalance of 2.01 buys only
    ``filled`` (no fee) before the venue ends it."""
    s = st.init(params(**kw), D(0))
    s, (m,) = st.step(s, st.Tick(D(100)))
    assert m.qty == D("2.01")
    if filled:
        s, _ = st.step(s, st.Filled(m.client_id, filled, D(100), D(0), "SOL", "r1"))
    s, out = st.step(s, st.Cancelled(m.client_id))
    assert s.phase is st.RUNNING and not s.markets
    return s, out


def test_a_short_rebalance_is_refilled_with_one_market_buy_of_the_shortfall_and_its_fill_places_the_sell():
    s, out = short_start(D(1))
    assert [(p.side, p.price) for p in places(out) if p.side is Side.sell] == [(Side.sell, D(105))]
    assert s.gaps[3].side is None and st.missing(s) == [3]
    assert s.notice.level is st.Level.warning and "1 sell levels stay idle" in s.note
    s, out = st.step(s, st.Refill())
    (m,) = out  # nothing to place before the base is there: exactly one market buy
    assert isinstance(m, st.Market) and m.side is Side.buy and m.reason == "refill"
    assert m.qty == D("1.01")  # 1 short, grossed up for the 0.1 % fee, rounded up to the step
    assert s.notice.level is st.Level.info and s.notice.kind is st.Kind.refill and "buying 1.01 SOL" in s.note
    assert s.markets[m.client_id].side is Side.buy
    s, out = st.step(s, st.Filled(m.client_id, D("1.01"), D(100), D("0.00101"), "SOL", "f1"))
    (sell,) = places(out)
    assert (sell.side, sell.price, sell.qty, sell.gap) == (Side.sell, D(110), D(1), 3)
    assert not s.markets and st.missing(s) == [] and s.notice.level is st.Level.info
    assert s.inventory == D(1) + D("1.01") - D("0.00101")  # books: the refill's base, net of its fee


@pytest.mark.parametrize("filled", [D(0), D("0.5"), D("1.37"), D("1.999")])
def test_the_refills_shortfall_is_sized_as_the_start_sizes_the_rebalance(filled):
    s, _ = short_start(filled)
    s, out = st.step(s, st.Refill())
    s0, start = st.step(st.init(params(), filled), st.Tick(D(100)))  # a start that owns what filled
    got = markets(out)
    assert places(out) == [] and len(st.missing(s)) == (1 if filled >= 1 else 2)  # 105 was placed if base allowed
    assert len(got) == 1 and got[0].qty == start[0].qty  # the same shortfall, the same order


def test_the_minimum_order_and_the_step_bound_the_refill():
    s, _ = short_start(D("1.999"), market_fee=D("0.001"))
    s.p = st.Params(*[getattr(s.p, f) for f in ("buy", "sell", "qty", "step")], D("0.05"), "SOL", "USDC")
    s, (m,) = st.step(s, st.Refill())  # 0.001 short: the minimum order is bought
    assert m.qty == D("0.05")


def test_no_refill_while_a_market_order_is_in_flight():
    s, _ = short_start(D(0))
    s, (m,) = st.step(s, st.Refill())
    before = json.dumps(s.to_dict())
    s, out = st.step(s, st.Refill())
    assert out == [] and list(s.markets) == [m.client_id] and json.dumps(s.to_dict()) == before


def test_no_refill_unless_running_with_idle_gaps():
    s = st.init(params(), D(0))
    assert st.step(s, st.Refill())[1] == []  # waiting: never placed
    s, _ = st.step(s, st.Tick(D(100)))
    assert s.phase is st.REBALANCING and st.step(s, st.Refill())[1] == [] and len(s.markets) == 1
    full = st.init(params(), D(5))
    full, _ = st.step(full, st.Tick(D(100)))
    note = full.note
    assert st.step(full, st.Refill())[1] == [] and full.note == note  # nothing idle: nothing to say
    s, _ = short_start(D(0), stop_loss=D(80))
    s.limits_ok = False
    assert st.step(s, st.Refill())[1] == []  # the book takes no limit orders now
    s.limits_ok = True
    s, _ = st.step(s, st.Stop(cancel=True))
    assert s.phase is st.PARKED and st.step(s, st.Refill())[1] == []
    s, _ = st.step(s, st.Resume())
    s, _ = st.step(s, st.Tick(D(80)))
    assert s.phase is st.STOPPED and st.step(s, st.Refill())[1] == [] and not s.markets


def test_idle_gaps_below_the_price_get_buys_without_any_market_order():
    s, out = short_start(D(1))
    sell = next(p for p in places(out) if p.side is Side.sell)
    s, _ = st.step(s, st.Tick(D(106)))
    s, out = st.step(s, st.Filled(sell.client_id, D(1), D(105), D(0), "USDC", "s1"))
    assert [(p.side, p.price) for p in places(out)] == [(Side.buy, D(100))]  # gap 2 flipped to a buy
    s, _ = st.step(s, st.Tick(D(109)))  # 110 is now the nearest line: gap 3 (105..110) would hold a buy
    s, out = st.step(s, st.Refill())
    assert markets(out) == [] and [(p.side, p.price, p.gap) for p in places(out)] == [(Side.buy, D(105), 3)]
    assert st.missing(s) == [] and s.notice.kind is st.Kind.refill


def test_the_book_refusing_market_orders_places_what_needs_no_base_and_waits_for_the_rest():
    s, _ = short_start(D(0))
    s.markets_ok = False
    s, out = st.step(s, st.Refill())
    assert out == [] and s.gaps[2].side is None and s.notice.level is st.Level.warning
    assert "no market orders" in s.note and "2 sell levels stay idle" in s.note


def test_a_refill_that_ends_short_places_the_nearest_sell_and_leaves_the_rest_idle_with_a_warning():
    s, _ = short_start(D(0))
    s, (m,) = st.step(s, st.Refill())
    assert m.qty == D("2.01")
    s, out = st.step(s, st.Filled(m.client_id, D("1.2"), D(100), D(0), "SOL", "f1"))
    assert out == [] and m.client_id in s.markets  # partly filled: waits for the end
    s, out = st.step(s, st.Cancelled(m.client_id))  # the venue expired the rest
    assert [(p.side, p.price) for p in places(out)] == [(Side.sell, D(105))]  # nearest first
    assert s.gaps[3].side is None and st.missing(s) == [3] and not s.markets
    assert s.notice.level is st.Level.warning and s.notice.kind is st.Kind.refill
    assert "bought 1.2 of 2.01" in s.note and "1 sell levels stay idle" in s.note
    s, (m2,) = st.step(s, st.Refill())  # the next refill buys only the rest: 0.8 short
    assert m2.qty == D("0.81")
    s, out = st.step(s, st.Rejected(m2.client_id, "Insufficient funds"))
    assert out == [] and s.notice.level is st.Level.warning and "rejected" in s.note and st.missing(s) == [3]


def test_free_base_excludes_what_sells_and_partly_filled_buys_are_owed():
    s, out = short_start(D(1))
    buy = next(p for p in places(out) if p.price == D(95))
    s, _ = st.step(s, st.Tick(D(96)))
    s, _ = st.step(s, st.Filled(buy.client_id, D("0.6"), D(95), D(0), "USDC", "b1"))  # partly: its 0.6 is owed
    s, (m,) = st.step(s, st.Refill())
    assert m.qty == D("1.01")  # the 0.6 a partly filled buy will sell is not the idle sell's


def test_a_trigger_during_a_refill_closes_only_after_the_refill_is_booked():
    s, out = short_start(D(1), stop_loss=D(80), sell_on_trigger=True)
    s, (m,) = st.step(s, st.Refill())
    s, out = st.step(s, st.Tick(D(80)))
    assert s.phase is st.STOPPED and all(isinstance(i, st.Cancel) for i in out)
    for c in [i.client_id for i in out]:
        s, more = st.step(s, st.Cancelled(c))
        assert markets(more) == []  # the refill's base is not booked yet
    s, out = st.step(s, st.Filled(m.client_id, D("1.01"), D(80), D(0), "SOL", "f1"))
    (close,) = markets(out)
    assert close.side is Side.sell and close.qty == D("2.01") and places(out) == []


def test_a_refill_in_flight_survives_the_snapshot():
    s, _ = short_start(D(1))
    s, (m,) = st.step(s, st.Refill())
    s2 = st.GridState.from_dict(json.loads(json.dumps(s.to_dict())))
    assert s2.markets[m.client_id].reason == "refill" and s2.markets[m.client_id].side is Side.buy
    s2, out = st.step(s2, st.Filled(m.client_id, D("1.01"), D(100), D(0), "SOL", "f1"))
    assert [p.price for p in places(out)] == [D(110)] and st.missing(s2) == []
