"""Pure level maths: price lines, tick/step rounding and per-level sizing. No I/O, no clock.

Convention (Binance/Bybit): ``levels`` counts *intervals*, so there are ``levels + 1`` price lines
L0 < L1 < ... < Ln. Each line has two exchange prices: the buy price is the line rounded *down* to
the tick and the sell price the line rounded *up*, so rounding never shrinks a grid step below the
configured one (passivbot/hummingbot do the same).
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Optional, Sequence


class GridError(ValueError):
    """The grid cannot be built on this market (steps below tick, size below minimum)."""


def price_lines(lower: Decimal, upper: Decimal, levels: int, geometric: bool = False) -> list[Decimal]:
    """The ``levels + 1`` unrounded lines; the ends are exactly ``lower`` and ``upper``."""
    if levels < 1 or lower <= 0 or upper <= lower:
        raise GridError(f"need 0 < lower < upper and levels >= 1 (got {lower}, {upper}, {levels})")
    with localcontext() as ctx:
        ctx.prec = 34
        if geometric:
            ratio = (upper / lower) ** (Decimal(1) / Decimal(levels))
            lines = [lower * ratio ** i for i in range(levels)]
        else:
            step = (upper - lower) / Decimal(levels)
            lines = [lower + step * i for i in range(levels)]
    lines.append(upper)
    return lines


def round_down(x: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= x (buy prices, quantities)."""
    return ((x / step).to_integral_value(ROUND_FLOOR) * step).quantize(step)


def round_up(x: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is >= x (sell prices)."""
    return ((x / step).to_integral_value(ROUND_CEILING) * step).quantize(step)


@dataclass(frozen=True)
class Levels:
    """Exchange prices per line: ``buy[i]`` and ``sell[i]`` for line i."""

    buy: tuple[Decimal, ...]
    sell: tuple[Decimal, ...]

    @property
    def count(self) -> int:
        return len(self.buy)


def tick_levels(lines: Sequence[Decimal], tick: Decimal) -> Levels:
    """Round lines to the tick; refuse grids whose adjacent lines collapse after rounding.

    A buy at line i and a sell at line i+1 must differ by at least one tick, otherwise a matched
    pair earns nothing and two lines become one order book level.
    """
    buy = tuple(round_down(x, tick) for x in lines)
    sell = tuple(round_up(x, tick) for x in lines)
    if buy[0] <= 0:
        raise GridError(f"lowest line {lines[0]} rounds to zero at tick {tick}")
    for i in range(len(lines) - 1):
        if buy[i + 1] <= sell[i]:
            raise GridError(
                f"lines {lines[i]:.8g} and {lines[i + 1]:.8g} are closer than the tick {tick}: use fewer levels"
            )
    return Levels(buy, sell)


def nearest_line(lines: Sequence[Decimal], price: Decimal) -> int:
    """Index of the line nearest ``price`` (ties go to the lower line): the start's empty line."""
    i = bisect_left(lines, price)
    if i == 0:
        return 0
    if i == len(lines):
        return len(lines) - 1
    return i if lines[i] - price < price - lines[i - 1] else i - 1


def split_at(lines: Sequence[Decimal], price: Decimal) -> tuple[int, int]:
    """(#buys, #sells) a neutral grid starts with at ``price``: lines below/above the empty one."""
    e = nearest_line(lines, price)
    return e, len(lines) - 1 - e


def qty_for_investment(investment: Decimal, levels: Levels, price: Decimal, step: Decimal,
                       fee_rate: Decimal = Decimal(0)) -> Decimal:
    """Equal base qty per level so that buys below plus base for sells above cost ``investment``.

    Capital needed at start (reference 1.6): q * (sum of buy prices below) for the buys, plus
    q * #above * price (+fee) to buy the base the sells need.
    """
    e = nearest_line(levels.buy, price)
    below = sum(levels.buy[:e], Decimal(0))
    above = Decimal(levels.count - 1 - e) * price * (1 + fee_rate)
    denom = below + above
    if denom <= 0:
        raise GridError("cannot size the grid: no levels on either side of the price")
    return round_down(investment / denom, step)


def check_qty(qty: Decimal, step: Decimal, min_qty: Decimal, fee_rate: Decimal) -> Decimal:
    """Round a per-level qty to the step and make sure the fee-net counter sell still meets the minimum.

    All levels share one size, so a size below the minimum drops every level: that is a config error.
    """
    q = round_down(qty, step)
    if q < min_qty:
        raise GridError(f"qty per level {qty} rounds to {q}, below the market minimum {min_qty}")
    net = round_down(q - q * fee_rate, step)
    if net < min_qty:
        raise GridError(f"qty per level {q} minus the buy fee rounds to {net}, below the minimum {min_qty}")
    return q


def plan_qty(qty_per_level: Optional[Decimal], investment: Optional[Decimal], levels: Levels, price: Decimal,
             step: Decimal, min_qty: Decimal, fee_rate: Decimal) -> Decimal:
    """Per-level qty from whichever sizing the config gives; price is clamped into the range."""
    if qty_per_level is not None:
        return check_qty(qty_per_level, step, min_qty, fee_rate)
    assert investment is not None
    p = min(max(price, levels.buy[0]), levels.sell[-1])
    return check_qty(qty_for_investment(investment, levels, p, step, fee_rate), step, min_qty, fee_rate)
