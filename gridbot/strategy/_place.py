"""Placing the grid: client ids, the grid around the last price, one wanted order at a time.

The lowest layer of the machine's transitions (``_fills`` and ``_step`` build on it). Every new
note goes through ``_say``, which also sets the typed ``Notice`` (level, kind) the runner logs by.
"""
from __future__ import annotations

from decimal import Decimal

from ..grid import nearest_line, round_up
from ._events import Intent, Kind, Level, Notice, Place
from ._state import (
    BUY, COUNTER_BITS, COUNTER_MAX, RETIRED_ORDERS, RUNNING, SELL, WAITING, ZERO, GridState,
)

INFO, WARNING = Level.info, Level.warning


def _say(s: GridState, level: Level, kind: Kind, text: str) -> None:
    s.note = text
    s.notice = Notice(level, kind, text)


def _cid(s: GridState) -> int:
    c = s.next_cid
    if c > COUNTER_MAX or s.epoch == 0:  # the runner keeps EPOCH_HEADROOM ids spare: a bug, not a state
        raise RuntimeError(f"client-id counter of epoch {s.epoch} exhausted; NewEpoch was not fed")
    s.next_cid = c + 1
    return s.epoch << COUNTER_BITS | c


def _empty_line(s: GridState) -> int:
    mid = [(b + x) / 2 for b, x in zip(s.p.buy, s.p.sell)]
    return nearest_line(mid, s.price)  # type: ignore[arg-type]


def _sell_count(s: GridState) -> int:
    return len(s.gaps) - _empty_line(s)


def _place_grid(s: GridState) -> list[Intent]:
    """Buys on gaps below the empty line, sells above, nearest first; sells only as base allows."""
    price = s.price
    if price is None or not (s.p.buy[0] <= price <= s.p.sell[-1]):
        s.phase = WAITING
        return []
    s.phase = RUNNING
    s.held.clear()
    e = _empty_line(s)
    qty = s.p.qty
    base = s.inventory
    for k in range(e, len(s.gaps)):  # gap k sells at line k+1, nearest first
        gap = s.gaps[k]
        if base >= qty:
            gap.reset_leg(SELL, qty)
            base -= qty
            s.want.add(k)
        else:
            gap.reset_leg(None, ZERO)
    for k in range(e):
        s.gaps[k].reset_leg(BUY, qty)
        s.want.add(k)
    _say(s, INFO, Kind.grid, f"grid placed around line {e}")
    return _retry(s)


def _buy_qty(s: GridState, short: Decimal) -> Decimal:
    """The market buy that nets ``short`` base: grossed up by the fee charged in base, rounded up to
    the step, at least the minimum order (the start's rebalance and a refill alike)."""
    return max(round_up(short / (1 - s.p.market_fee), s.p.step), s.p.min_qty)


def _free_base(s: GridState) -> Decimal:
    """The grid's base not promised to a sell: its inventory less every sell leg's rest, the base a
    partly filled buy will sell, and the pooled dust (kept for the next counter-sell). Never negative."""
    promised = s.books.dust
    for gap in s.gaps:
        if gap.side is SELL:
            promised += gap.qty - gap.filled
        elif gap.side is BUY:
            promised += gap.filled - gap.fee_base
    return max(ZERO, s.inventory - promised)


def _fill_idle(s: GridState, out: list[Intent]) -> tuple[int, Decimal]:
    """Give idle gaps what a grid placed now would (``_place_grid``): a buy below the empty line, a sell
    above it while the grid's free base lasts, nearest first; each is placed or wanted as usual. Returns
    the idle sells left without base and the base they lack."""
    e = _empty_line(s)
    qty = s.p.qty
    free = _free_base(s)
    left, new = 0, []
    for k in range(e, len(s.gaps)):
        gap = s.gaps[k]
        if gap.side is None:
            if free >= qty:
                free -= qty
                gap.reset_leg(SELL, qty)
                gap.basis = None
                new.append(k)
            else:
                left += 1
    for k in range(e):
        gap = s.gaps[k]
        if gap.side is None:
            gap.reset_leg(BUY, qty)
            gap.basis = None
            new.append(k)
    s.want.update(new)
    for k in sorted(new):
        _try_place(s, k, out)
    return left, max(ZERO, left * qty - free)


def _retry(s: GridState) -> list[Intent]:
    out: list[Intent] = []
    for g in sorted(s.want):
        _try_place(s, g, out)
    return out


def _try_place(s: GridState, g: int, out: list[Intent]) -> None:
    """Place gap g's wanted order if the price is on the right side and its line is free."""
    if s.phase is not RUNNING or s.price is None or not s.limits_ok:
        return
    gap = s.gaps[g]
    if gap.cid or gap.side is None:
        s.want.discard(g)
        return
    if gap.side is BUY:
        price = s.p.buy[g]
        if price >= s.price:
            return
        if g > 0:
            nb = s.gaps[g - 1]
            if nb.cid and nb.side is SELL:  # neighbour sells on this line
                return
    else:
        price = s.p.sell[g + 1]
        if price <= s.price:
            return
        if g + 1 < len(s.gaps):
            nb = s.gaps[g + 1]
            if nb.cid and nb.side is BUY:
                return
    if s.band is not None and not (s.price * s.band[0] <= price <= s.price * s.band[1]):
        return  # outside today's price band: the venue would refuse it; wait for the price to come near
    cid = _cid(s)
    gap.cid = cid
    s.by_cid[cid] = g
    s.want.discard(g)
    if gap.side is BUY:
        if g > s.best_buy:
            s.best_buy = g
    elif s.best_sell < 0 or g < s.best_sell:
        s.best_sell = g
    out.append(Place(cid, gap.side, price, gap.qty - gap.filled, g))


def _unlive(s: GridState, g: int) -> None:
    """Gap g's order is gone; move the nearest-order markers (amortised O(1): usually one step)."""
    gap = s.gaps[g]
    if gap.cid and gap.side is not None:
        s.retired[gap.cid] = gap.side
        if len(s.retired) > RETIRED_ORDERS:
            del s.retired[next(iter(s.retired))]
    s.by_cid.pop(gap.cid, None)
    gap.cid = 0
    if g == s.best_buy:
        k = g - 1
        while k >= 0 and not (s.gaps[k].cid and s.gaps[k].side is BUY):
            k -= 1
        s.best_buy = k
    if g == s.best_sell:
        k, n = g + 1, len(s.gaps)
        while k < n and not (s.gaps[k].cid and s.gaps[k].side is SELL):
            k += 1
        s.best_sell = k if k < n else -1
