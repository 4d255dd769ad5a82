"""The grid machine's entry points: ``init``, ``step(state, event) -> (state, intents)``, client ids,
``missing``. Pure: no I/O, no clock. The rules are in the package docstring (``gridbot.strategy``)."""
from __future__ import annotations

from decimal import Decimal

from ._events import (
    Cancelled, CloseRetry, Event, Filled, Intent, Kind, Market, NewEpoch, Refill, Rejected, Release, Resume, Rules,
    SetLimits, Stop, Tick,
)
from ._fills import _close, _close_ready, _close_retry, _on_fill, _on_gone, _on_stop, _trigger
from ._place import INFO, WARNING, _buy_qty, _cid, _fill_idle, _place_grid, _retry, _say, _sell_count, _try_place
from ._state import (
    BUY, COUNTER_BITS, COUNTER_MAX, EPOCH_HEADROOM, EPOCH_MAX, PARKED, REBALANCING, RUNNING, WAITING, GridState,
    MarketLeg, Params, set_thresholds,
)


def init(p: Params, base_budget: Decimal, epoch: int = 1) -> GridState:
    """A fresh machine owning ``base_budget`` base; the grid is placed on the first in-range tick."""
    if len(p.buy) < 2 or len(p.buy) != len(p.sell):
        raise ValueError("need at least two lines with buy and sell prices")
    _check_epoch(epoch)
    return GridState(p, base_budget, epoch)


def _check_epoch(epoch: int) -> None:
    if not 1 <= epoch <= EPOCH_MAX:
        raise ValueError(f"epoch {epoch} is outside 1..{EPOCH_MAX}")


def needs_epoch(s: GridState) -> bool:
    """True when the runner must feed ``NewEpoch`` before the next step (legacy state, or few ids left)."""
    return s.epoch == 0 or s.next_cid > COUNTER_MAX - EPOCH_HEADROOM


def client_id(epoch: int, counter: int) -> int:
    return epoch << COUNTER_BITS | counter


def missing(s: GridState) -> list[int]:
    """Gaps of a running grid without a live order: wanted (price, neighbour, band or book state
    keep them back), held after a rejection, or idle (no base for the sell, a buy netting below the
    minimum; the runner's ``Refill`` gives them orders again). Empty unless the grid is running."""
    if s.phase is not RUNNING:
        return []
    return [g for g, gap in enumerate(s.gaps) if not gap.cid]


def step(s: GridState, ev: Event) -> tuple[GridState, list[Intent]]:
    """Apply one event; return the (same, mutated) state and what to do at the venue, in order."""
    if ev.__class__ is Tick:  # hot path: two comparisons and a set check
        price = s.price = ev.price  # type: ignore[union-attr]
        if s.phase is RUNNING:
            if s.lo < price < s.hi:
                if not s.want:
                    return s, []
                return s, _retry(s)
            return s, _trigger(s, price)
        if s.phase is WAITING and s.p.buy[0] <= price <= s.p.sell[-1]:
            return s, _start(s)
        return s, []
    if isinstance(ev, (Filled, Rejected, Cancelled)):
        if isinstance(ev, Filled):
            out = _on_fill(s, ev)
        else:
            out = _on_gone(s, ev.client_id, rejected=isinstance(ev, Rejected),
                           reason=ev.reason if isinstance(ev, Rejected) else "cancelled")
        if s.close_pending and _close_ready(s):
            out += _close(s)
        return s, out
    if isinstance(ev, Stop):
        return s, _on_stop(s, ev.cancel)
    if isinstance(ev, Resume):
        if s.phase is PARKED:
            s.phase = RUNNING
            return s, _retry(s)
        return s, []
    if isinstance(ev, NewEpoch):
        _check_epoch(ev.epoch)
        s.epoch, s.next_cid = ev.epoch, 1
        return s, []
    if isinstance(ev, CloseRetry):
        return s, _close_retry(s, ev.available)
    if isinstance(ev, Release):
        out: list[Intent] = []
        for g in ev.gaps:
            if g in s.held:
                s.held.discard(g)
                s.want.add(g)
                _try_place(s, g, out)
        return s, out
    if isinstance(ev, Refill):
        return s, _refill(s)
    if isinstance(ev, Rules):
        s.band, s.limits_ok, s.markets_ok = ev.band, ev.limits, ev.markets
        return s, _retry(s) if s.want else []
    if isinstance(ev, SetLimits):
        old = s.p
        s.p = Params(old.buy, old.sell, old.qty, old.step, old.min_qty, old.base, old.quote, old.market_fee,
                     ev.stop_loss, ev.take_profit, ev.sell_on_trigger)
        set_thresholds(s)
        return s, []
    raise TypeError(f"unknown event {ev!r}")


def _start(s: GridState) -> list[Intent]:
    """First in-range price: buy the base the sells need, or place the grid right away."""
    need = _sell_count(s) * s.p.qty
    have = s.inventory
    if have < need:
        if not s.markets_ok:  # the book takes no market orders now: wait (re-tried on every tick)
            _say(s, INFO, Kind.waiting,
                 f"waiting: the book takes no market orders, and the sells need {need - have} {s.p.base} more")
            return []
        qty = _buy_qty(s, need - have)
        cid = _cid(s)
        s.markets[cid] = MarketLeg("rebalance", qty)
        s.phase = REBALANCING
        _say(s, INFO, Kind.rebalance, f"buying {qty} {s.p.base} for the sells")
        return [Market(cid, BUY, qty, "rebalance")]
    return _place_grid(s)


def _refill(s: GridState) -> list[Intent]:
    """Idle gaps get orders again, as a grid placed now would give them: buys at once, sells from the
    grid's free base, and ONE market buy (reason ``refill``) of what the remaining sells lack, sized as
    ``_start`` sizes the rebalance; its completion places them (``_market_done``). Only on a running
    grid inside its range whose book takes limit orders, and never while a market order is in flight."""
    price = s.price
    if (s.phase is not RUNNING or not s.limits_ok or s.markets or price is None
            or not s.p.buy[0] <= price <= s.p.sell[-1] or all(gap.side is not None for gap in s.gaps)):
        return []
    out: list[Intent] = []
    idle = sum(1 for gap in s.gaps if gap.side is None)
    left, short = _fill_idle(s, out)
    back = idle - left
    if not left:
        _say(s, INFO, Kind.refill, f"refill: {back} idle levels get orders again")
        return out
    if not s.markets_ok:
        _say(s, WARNING, Kind.refill, f"refill: {back} idle levels get orders again; {left} sell levels stay idle: "
                                      f"the book takes no market orders, and they need {short} {s.p.base} more")
        return out
    qty = _buy_qty(s, short)
    cid = _cid(s)
    s.markets[cid] = MarketLeg("refill", qty)
    _say(s, INFO, Kind.refill, f"refill: buying {qty} {s.p.base} for {left} idle sell levels"
                               + (f"; {back} idle levels get orders again" if back else ""))
    out.append(Market(cid, BUY, qty, "refill"))
    return out
