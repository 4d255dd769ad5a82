"""preview.plan: what a (re)start of a changed grid will do, from the saved state, before it happens."""
from __future__ import annotations

import json
from decimal import Decimal as D

from gridbot import preview, runner
from gridbot import strategy as st
from gridbot.exchange.factory import paper_market
from gridbot.models import GridConfig

OLD = {"symbol": "SOL_USDC", "lower_price": "100", "upper_price": "200", "levels": 10, "qty_per_level": "0.1",
       "paper": {"price": {"start_price": "150"}}}


def cfg(**over) -> GridConfig:
    return GridConfig.model_validate_json(json.dumps({**OLD, **over}))


def running_state(c: GridConfig, price: D = D("150")) -> dict:
    """A grid the way the bot leaves it in its store: base bought, orders placed."""
    s = st.init(runner.build_params(c, paper_market(c), price, D("0.001")), D("0"))
    s, intents = st.step(s, st.Tick(price))
    (buy,) = [i for i in intents if isinstance(i, st.Market)]
    s, intents = st.step(s, st.Filled(buy.client_id, buy.qty, price, D("0"), "SOL", "t1"))
    assert any(isinstance(i, st.Place) for i in intents)
    return s.to_dict()


def test_the_fields_that_re_grid_are_the_runners():
    assert preview.fingerprint is runner.grid_fingerprint  # one function: the preview compares what the bot does
    assert preview.fingerprint(cfg(base_investment="1")) != preview.fingerprint(cfg())


def test_no_plan_for_a_fresh_start_or_an_unchanged_grid():
    old = cfg()
    snap = running_state(old)
    assert preview.plan("a", old, None, None) is None
    assert preview.plan("a", old, preview.fingerprint(old), snap) is None
    assert preview.plan("a", cfg(stop_loss="90"), preview.fingerprint(old), snap) is None  # soft field: no re-grid


def test_a_changed_range_says_cancel_regrid_and_market_buy():
    old = cfg()
    snap = running_state(old)
    n_open = len(st.GridState.from_dict(snap).by_cid)
    assert n_open > 0
    new = cfg(lower_price="140", upper_price="240", qty_per_level="1")
    p = preview.plan("a", new, preview.fingerprint(old), snap)
    assert p is not None and not p.live
    text = "\n".join(p.lines)
    assert "lower_price 100 -> 140" in text and "upper_price 200 -> 240" in text
    assert f"cancel the {n_open} open order(s)" in text
    assert "place a new grid 140.00..240.00, 10 arithmetic intervals, 1.00 SOL per level" in text
    # at 150 the new grid has 9 sells of 1 SOL; the bot holds 0.51: it buys the rest (fee-grossed) at market
    assert "1 buys below and 9 sells above 150 USDC" in text
    assert "buy 8.50 SOL at market (about 1275 USDC)" in text and "it holds 0.51 SOL" in text


def test_live_plans_are_marked_live_and_an_out_of_range_price_waits():
    old = cfg()
    snap = running_state(old)
    new = cfg(exchange="backpack", lower_price="300", upper_price="400")
    p = preview.plan("b", new, preview.fingerprint(old), snap)
    assert p is not None and p.live
    assert "wait for the price (150" in "\n".join(p.lines)


def test_a_grid_the_bot_would_refuse_is_said_so():
    old = cfg()
    p = preview.plan("c", cfg(qty_per_level="0.001"), preview.fingerprint(old), running_state(old))
    assert p is not None and "refuse to start" in "\n".join(p.lines)


def test_a_grid_stopped_with_its_orders_cancelled_has_nothing_to_cancel():
    """on_stop=cancel left no order open: the preview does not promise to cancel 0 orders."""
    old = cfg()
    s = st.GridState.from_dict(running_state(old))
    s, intents = st.step(s, st.Stop(cancel=True))
    for i in intents:
        s, _ = st.step(s, st.Cancelled(i.client_id))
    assert not s.by_cid
    p = preview.plan("d", cfg(lower_price="140"), preview.fingerprint(old), s.to_dict())
    assert p is not None
    text = "\n".join(p.lines)
    assert "cancel the" not in text and "place a new grid 140.00..200.00" in text
