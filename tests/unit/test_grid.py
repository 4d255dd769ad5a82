from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from gridbot.grid import (GridError, check_qty, nearest_line, plan_qty, price_lines, qty_for_investment, round_down,
                          round_up, split_at, tick_levels)


def test_arithmetic_lines_count_intervals():
    lines = price_lines(D(100), D(200), 4)
    assert lines == [D(100), D(125), D(150), D(175), D(200)]


def test_geometric_lines_have_constant_ratio():
    lines = price_lines(D(100), D(400), 2, geometric=True)
    assert lines[0] == 100 and lines[2] == 400
    assert abs(lines[1] - 200) < D("1e-20")


def test_rounding_buys_down_sells_up():
    assert round_down(D("150.019"), D("0.01")) == D("150.01")
    assert round_up(D("150.011"), D("0.01")) == D("150.02")
    assert round_up(D("150.01"), D("0.01")) == D("150.01")
    assert str(round_down(D("149"), D("0.01"))) == "149.00"
    assert round_down(D("0.129"), D("0.05")) == D("0.10")


def test_tick_levels_refuses_lines_closer_than_a_tick():
    with pytest.raises(GridError, match="closer than the tick"):
        tick_levels(price_lines(D("1.00"), D("1.02"), 10), D("0.01"))


def test_nearest_line_and_split():
    lines = [D(10), D(20), D(30), D(40)]
    assert nearest_line(lines, D(24)) == 1
    assert nearest_line(lines, D(26)) == 2
    assert nearest_line(lines, D(25)) == 1  # tie goes down
    assert nearest_line(lines, D(5)) == 0 and nearest_line(lines, D(99)) == 3
    assert split_at(lines, D(26)) == (2, 1)


def test_investment_sizing_covers_buys_below_and_base_above():
    levels = tick_levels(price_lines(D(90), D(110), 4), D("0.01"))  # 90 95 100 105 110
    q = qty_for_investment(D(1000), levels, D(100), D("0.01"))
    # buys at 90 and 95, base for sells at 105 and 110 bought at 100: q * (185 + 200) <= 1000
    assert q == D("2.59")
    assert q * (D(185) + D(200)) <= 1000 < (q + D("0.01")) * (D(185) + D(200))


def test_qty_below_minimum_is_refused_including_after_fee():
    with pytest.raises(GridError, match="below the market minimum"):
        check_qty(D("0.004"), D("0.01"), D("0.01"), D("0.001"))
    with pytest.raises(GridError, match="minus the buy fee"):
        check_qty(D("0.01"), D("0.01"), D("0.01"), D("0.001"))
    assert check_qty(D("0.05"), D("0.01"), D("0.01"), D("0.001")) == D("0.05")


def test_plan_qty_clamps_price_into_range():
    levels = tick_levels(price_lines(D(90), D(110), 4), D("0.01"))
    assert plan_qty(None, D(1000), levels, D(1), D("0.01"), D("0.01"), D(0)) == \
        plan_qty(None, D(1000), levels, D(90), D("0.01"), D("0.01"), D(0))


@given(lower=hs.decimals(D(1), D(1000), places=2), ratio=hs.decimals(D("1.05"), D(3), places=3),
       levels=hs.integers(2, 60), geometric=hs.booleans())
def test_rounded_levels_are_strictly_increasing_and_on_tick(lower, ratio, levels, geometric):
    upper = (lower * ratio).quantize(D("0.01"))
    tick = D("0.01")
    try:
        lv = tick_levels(price_lines(lower, upper, levels, geometric), tick)
    except GridError:
        return
    assert len(lv.buy) == levels + 1
    for i in range(levels):
        assert lv.buy[i] <= lv.sell[i] and lv.sell[i] < lv.buy[i + 1]
    assert all(x % tick == 0 for x in lv.buy + lv.sell)
