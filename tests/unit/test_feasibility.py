"""`validate` ok = the bot will trade: validate and the bot's own start-up agree.

The bot side is the real ``Bot``: its ``start_up`` against the paper exchange the factory builds
from the config (as ``gridbot run`` does). A config validate refuses must make the bot refuse to
start (ConfigError/GridError: exit 78) with the same problems; a config validate accepts must start
and rest an order on every level of its grid.
"""
from __future__ import annotations

import asyncio
import json
import tempfile
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridbot import feasibility
from gridbot import strategy as core
from gridbot.bot import Bot
from gridbot.config import parse_config
from gridbot.errors import ConfigError
from gridbot.exchange.factory import open_exchange
from gridbot.grid import GridError
from gridbot.models import GridConfig
from gridbot.notify import Notifier
from gridbot.runner import build_params
from gridbot.store import Store

SOL = {"symbol": "SOL_USDC", "lower_price": "100", "upper_price": "200", "levels": 10, "qty_per_level": "0.1"}
BTC = {"symbol": "BTC_USDC", "lower_price": "60000", "upper_price": "70000", "levels": 10}

# (name, config, words the validate error must contain)
INFEASIBLE = [
    ("btc_default_min_qty", {**BTC, "qty_per_level": "0.001", "paper": {"price": {"start_price": "65000"}}},
     ["rounds to 0.00", "paper.min_qty 0.01", "qty_per_level"]),
    ("btc_investment_too_small", {**BTC, "investment": "100", "paper": {"price": {"start_price": "65000"}}},
     ["below the market minimum", "investment"]),
    ("price_outside_range", {**BTC, "qty_per_level": "0.01"}, ["price 150.00", "paper.price.start_price",
                                                                "outside the grid", "wait forever"]),
    ("initial_quote_5", {**SOL, "paper": {"initial_quote": "5", "price": {"start_price": "150"}}},
     ["needs", "paper.initial_quote is 5"]),
    ("lines_closer_than_tick", {**SOL, "lower_price": "1", "upper_price": "1.2", "levels": 50,
                                "fee_rate": "0.0001", "paper": {"price": {"start_price": "1.1"}}},
     ["closer than the tick", "paper.tick_size"]),
    ("base_but_no_quote_for_buys", {**SOL, "paper": {"initial_quote": "1", "initial_base": "100",
                                                     "price": {"start_price": "150"}}},
     ["buy(s) of 0.10 SOL", "paper.initial_quote is 1"]),
    # the account's coins are not the grid's: without base_investment its sells are bought at market
    ("coins_held_but_not_granted", {**SOL, "paper": {"initial_quote": "60", "initial_base": "1",
                                                     "price": {"start_price": "150"}}},
     ["buying 0.51 SOL at market", "paper.initial_quote is 60", "base_investment"]),
    ("base_investment_not_held", {**SOL, "base_investment": "2", "paper": {"initial_base": "1",
                                                                           "price": {"start_price": "150"}}},
     ["base_investment 2 SOL is more than the 1 SOL in paper.initial_base"]),
]

FEASIBLE = [
    ("sol_default", {**SOL, "paper": {"price": {"start_price": "150"}}}),
    ("btc_right_size", {**BTC, "qty_per_level": "0.01", "paper": {"step_size": "0.0001", "min_qty": "0.0001",
                                                                  "initial_quote": "100000",
                                                                  "price": {"start_price": "65000"}}}),
    ("base_pays_for_sells", {**SOL, "base_investment": "1", "paper": {"initial_quote": "60", "initial_base": "1",
                                                                      "price": {"start_price": "150"}}}),
]


def validate_errors(cfg: dict) -> list[str]:
    """What `gridbot validate` reports for this config (one ConfigError, problems joined by '; ')."""
    try:
        parse_config(json.dumps(cfg), "x.json", feasible=True)
    except ConfigError as exc:
        return [str(exc)]
    return []


def start_bot(cfg: dict, tmp: Path) -> tuple[list[str], Bot]:
    """The bot's own start-up for this config: (its refusal, if any; the bot)."""
    c = GridConfig.model_validate_json(json.dumps(cfg))
    tmp.mkdir(parents=True, exist_ok=True)

    async def go() -> tuple[list[str], Bot]:
        ex = open_exchange(c, tmp)
        epochs = iter(range(1, 1000))
        b = Bot("t", c, Store.open(tmp), ex, Notifier(""), tmp, lambda: next(epochs))
        b._stop_event = asyncio.Event()
        try:
            await b.start_up()
        except (ConfigError, GridError) as exc:
            return [str(exc)], b
        finally:
            await ex.close()
            b.store.close()
        return [], b

    return asyncio.run(go())


def bot_errors(cfg: dict, tmp: Path) -> list[str]:
    """What the bot says when it refuses to start; empty when it started and rests every level."""
    errors, b = start_bot(cfg, tmp)
    if not errors:
        assert b.state is not None and b.state.phase is core.RUNNING, (b.state and b.state.phase, b.state.note)
        assert core.missing(b.state) == [], (core.missing(b.state), b.state.note)
    return errors


@pytest.mark.parametrize("name,cfg,words", INFEASIBLE, ids=[x[0] for x in INFEASIBLE])
def test_infeasible_configs_fail_validate_and_the_bot_alike(name, cfg, words, tmp_path):
    v = validate_errors(cfg)
    b = bot_errors(cfg, tmp_path)
    assert v and b, (v, b)
    for w in words:
        assert w in v[0], (w, v[0])
        assert w in b[0], (w, b[0])  # the bot's journal line names the same problem and key


@pytest.mark.parametrize("name,cfg", FEASIBLE, ids=[x[0] for x in FEASIBLE])
def test_feasible_configs_pass_both(name, cfg, tmp_path):
    assert validate_errors(cfg) == []
    assert bot_errors(cfg, tmp_path) == []


def test_every_problem_at_once():
    cfg = {**BTC, "qty_per_level": "0.001"}  # price 150 outside AND size below the minimum
    (msg,) = validate_errors(cfg)
    assert "outside the grid" in msg and "below the market minimum" in msg


def test_grid_errors_the_bot_raises_are_always_reported_by_validate(tmp_path):
    for _name, cfg, _w in INFEASIBLE:
        c = GridConfig.model_validate_json(json.dumps(cfg))
        v = feasibility.paper_venue(c)
        try:
            build_params(c, v.market, v.price, v.taker_fee)
        except GridError:
            assert validate_errors(cfg)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lower=st.integers(1, 5000), width=st.integers(1, 5000), levels=st.integers(2, 60),
    size=st.sampled_from(["qty_per_level=0.001", "qty_per_level=0.01", "qty_per_level=0.1", "qty_per_level=1",
                          "qty_per_level=5", "investment=50", "investment=5000", "investment=500000"]),
    where=st.integers(-20, 120), geometric=st.booleans(),
    quote=st.sampled_from(["0", "5", "100", "10000", "1000000"]), base=st.sampled_from(["0", "0.5", "50"]),
    granted=st.sampled_from(["0", "0.5", "50"]), fee=st.sampled_from(["0", "0.001"]),
    tick=st.sampled_from(["0.01", "0.1", "1"]), min_qty=st.sampled_from(["0.001", "0.01", "0.1"]),
)
def test_property_validate_and_bot_agree(tmp_path, lower, width, levels, size, where, geometric, quote, base,
                                         granted, fee, tick, min_qty):
    """Over random configs: validate ok exactly when the bot starts and rests an order on every level."""
    key, amount = size.split("=")
    start = max(1, lower + width * where // 100)  # the price as a percentage of the range: mostly inside
    cfg = {"symbol": "X_USD", "lower_price": str(lower), "upper_price": str(lower + width), "levels": levels,
           key: amount, "fee_rate": "0", "base_investment": granted,
           "spacing": "geometric" if geometric else "arithmetic",
           "paper": {"initial_quote": quote, "initial_base": base, "tick_size": tick, "step_size": "0.001",
                     "min_qty": min_qty, "taker_fee": fee, "price": {"start_price": str(start)}}}
    try:
        GridConfig.model_validate_json(json.dumps(cfg))
    except Exception:
        return  # invalid before feasibility: not this test's subject
    with tempfile.TemporaryDirectory(dir=tmp_path) as fresh:  # each example a fresh state, as at a first start
        v = validate_errors(cfg)
        event("validate ok" if not v else "validate refuses")
        assert bool(v) == bool(bot_errors(cfg, Path(fresh))), v


def test_live_configs_skip_the_paper_checks():
    cfg = {**BTC, "exchange": "backpack", "qty_per_level": "0.001"}
    assert validate_errors(cfg) == []


def test_check_raises_one_config_error():
    c = GridConfig.model_validate_json(json.dumps({**BTC, "qty_per_level": "0.001"}))
    with pytest.raises(ConfigError) as exc:
        feasibility.check(c, feasibility.paper_venue(c))
    assert "; " in str(exc.value)


def test_paper_venue_price_is_the_streams_first_price(tmp_path):
    c = GridConfig.model_validate_json(json.dumps({**SOL, "paper": {"tick_size": "0.5",
                                                                     "price": {"start_price": "150.3"}}}))
    ex = open_exchange(c, tmp_path)
    assert feasibility.paper_venue(c).price == asyncio.run(ex.last_price(c.symbol)) == D("150.5")


def test_a_paper_regrid_away_from_the_price_waits_where_a_fresh_start_refuses(tmp_path):
    """At a fresh paper start the price is the config's own (outside the range: refused, as validate
    says). At a re-grid the simulated price is the market's by now: the new grid waits for it."""
    sol = {**SOL, "paper": {"price": {"start_price": "150"}}}
    assert bot_errors(sol, tmp_path / "a") == []
    away = {**sol, "lower_price": "300", "upper_price": "400"}
    errors, b = start_bot(away, tmp_path / "a")
    assert errors == [] and b.state is not None and b.state.phase is core.WAITING
    assert b.state.p.buy[0] == D("300")  # the new grid, waiting for the price
    (refused,) = start_bot(away, tmp_path / "fresh")[0]
    assert "the price 150.00 (paper.price.start_price) is outside the grid 300.00..400.00" in refused
