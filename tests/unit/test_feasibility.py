"""`validate` ok = the bot will trade: validate and the bot's start-up check agree.

The bot side is what the bot sees at start: the paper exchange built by exchange.factory from the
config (its market, last price and balances), then runner.build_params (exit 78 on GridError) and
feasibility.check with those figures (the call the runner makes before placing a new grid).
"""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbot import feasibility
from gridbot.config import parse_config
from gridbot.errors import ConfigError
from gridbot.exchange.factory import open_exchange
from gridbot.grid import GridError
from gridbot.models import GridConfig
from gridbot.runner import build_params

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
]

FEASIBLE = [
    ("sol_default", {**SOL, "paper": {"price": {"start_price": "150"}}}),
    ("btc_right_size", {**BTC, "qty_per_level": "0.01", "paper": {"step_size": "0.0001", "min_qty": "0.0001",
                                                                  "initial_quote": "100000",
                                                                  "price": {"start_price": "65000"}}}),
    ("base_pays_for_sells", {**SOL, "paper": {"initial_quote": "60", "initial_base": "1",
                                              "price": {"start_price": "150"}}}),
]


def validate_errors(cfg: dict) -> list[str]:
    """What `gridbot validate` reports for this config (one ConfigError, problems joined by '; ')."""
    try:
        parse_config(json.dumps(cfg), "x.json", feasible=True)
    except ConfigError as exc:
        return [str(exc)]
    return []


def bot_errors(cfg: dict, tmp: Path) -> list[str]:
    """What the bot finds at start, from the exchange it builds for this config."""
    c = GridConfig.model_validate_json(json.dumps(cfg))

    async def look():
        ex = open_exchange(c, tmp)
        market, price, bal = await ex.market(c.symbol), await ex.last_price(c.symbol), await ex.balances()
        return market, price, {a: b.available for a, b in bal.items()}, ex.venue.taker_fee

    market, price, balances, taker = asyncio.run(look())
    errors = []
    try:
        build_params(c, market, price, taker)
    except GridError as exc:
        errors.append(f"build_params: {exc}")
    errors += feasibility.problems(c, feasibility.Venue(market, price, balances, taker))
    return errors


@pytest.mark.parametrize("name,cfg,words", INFEASIBLE, ids=[x[0] for x in INFEASIBLE])
def test_infeasible_configs_fail_validate_and_the_bot_alike(name, cfg, words, tmp_path):
    v = validate_errors(cfg)
    b = bot_errors(cfg, tmp_path)
    assert v and b, (v, b)
    for w in words:
        assert w in v[0], (w, v[0])


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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lower=st.integers(1, 5000), width=st.integers(1, 5000), levels=st.integers(2, 60),
    qty=st.sampled_from(["0.001", "0.01", "0.1", "1", "5"]), start=st.integers(1, 12000),
    quote=st.sampled_from(["0", "5", "100", "10000", "1000000"]), base=st.sampled_from(["0", "0.5", "50"]),
    tick=st.sampled_from(["0.01", "0.1", "1"]), min_qty=st.sampled_from(["0.001", "0.01", "0.1"]),
)
def test_property_validate_and_bot_agree(tmp_path, lower, width, levels, qty, start, quote, base, tick, min_qty):
    cfg = {"symbol": "X_USD", "lower_price": str(lower), "upper_price": str(lower + width), "levels": levels,
           "qty_per_level": qty, "fee_rate": "0",
           "paper": {"initial_quote": quote, "initial_base": base, "tick_size": tick, "step_size": "0.001",
                     "min_qty": min_qty, "price": {"start_price": str(start)}}}
    try:
        GridConfig.model_validate_json(json.dumps(cfg))
    except Exception:
        return  # invalid before feasibility: not this test's subject
    assert bool(validate_errors(cfg)) == bool(bot_errors(cfg, tmp_path))


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
