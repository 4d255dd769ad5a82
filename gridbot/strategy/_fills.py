"""Orders ending: fills (booked once per trade id), cancellations and refusals, market legs, and
the stop-loss/take-profit trigger with its close. Each completed leg flips its gap (twin orders)."""
from __future__ import annotations

from decimal import Decimal

from ..grid import round_down
from ..records import Side
from ._events import Cancel, Filled, Intent, Kind, Market
from ._place import INFO, WARNING, _cid, _fill_idle, _place_grid, _say, _try_place, _unlive
from ._state import (
    BUY, MAX_REJECTS, PARKED, REBALANCING, RETIRED_ORDERS, RUNNING, SEEN_TRADES, SELL, STOPPED, ZERO, GridState,
    MarketLeg,
)


def _seen(s: GridState, trade_id: str) -> bool:
    if trade_id in s.seen:
        return True
    s.seen.add(trade_id)
    s.seen_order.append(trade_id)
    if len(s.seen_order) > SEEN_TRADES:
        s.seen.discard(s.seen_order.popleft())
    return False


def _on_fill(s: GridState, f: Filled) -> list[Intent]:
    if _seen(s, f.trade_id):
        return []
    g = s.by_cid.get(f.client_id)
    m = s.markets.get(f.client_id) if g is None else None
    if g is None and m is None:
        late = s.retired.get(f.client_id)
        if late is not None:  # executed before our cancel landed: balances only, the grid has moved on
            _book(s, late, f)
        return []  # else not ours (another bot on the account)
    side = s.gaps[g].side if g is not None else m.side  # type: ignore[union-attr]
    fee_b, fee_q, notional = _book(s, side, f)  # type: ignore[arg-type]
    if m is not None:
        m.filled += f.qty
        if m.filled >= m.qty:
            return _market_done(s, f.client_id)
        return []
    gap = s.gaps[g]  # type: ignore[index]
    gap.filled += f.qty
    gap.cost += notional
    gap.fee_base += fee_b
    gap.fee_quote += fee_q
    if gap.filled >= gap.qty:
        out: list[Intent] = []
        _complete(s, g, out)  # type: ignore[arg-type]
        return out
    return []


def _book(s: GridState, side: Side, f: Filled) -> tuple[Decimal, Decimal, Decimal]:
    """Move the balances and fee totals by one fill; return (base fee, quote fee, notional)."""
    b = s.books
    b.fills += 1
    fee_b = f.fee if f.fee_asset == s.p.base else ZERO
    fee_q = f.fee if f.fee_asset == s.p.quote else ZERO
    notional = f.qty * f.price
    if side is BUY:
        b.base_delta += f.qty - fee_b
        b.quote_delta -= notional + fee_q
    else:
        b.base_delta -= f.qty + fee_b
        b.quote_delta += notional - fee_q
    b.fees_base += fee_b
    b.fees_quote += fee_q
    return fee_b, fee_q, notional


def _market_done(s: GridState, cid: int) -> list[Intent]:
    leg = s.markets.pop(cid)
    reason, qty, filled = leg.reason, leg.qty, leg.filled
    s.retired[cid] = leg.side  # a fill heard of later still reaches the books
    if len(s.retired) > RETIRED_ORDERS:
        del s.retired[next(iter(s.retired))]
    if reason == "rebalance" and s.phase is REBALANCING:
        if filled < qty:
            note, before = s.note, s.notice
            out = _place_grid(s)
            idle = sum(1 for gap in s.gaps if gap.side is None)
            # as loud as what came before (a refused or ended market order), louder if levels stay idle
            level = WARNING if idle or (before is not None and before.level is WARNING) else INFO
            _say(s, level, Kind.short, f"{note}; bought {filled} of {qty} {s.p.base}" + (
                f": {idle} sell levels stay idle until a refill buys their base" if idle else ""))
            return out
        return _place_grid(s)
    if reason == "refill":
        if s.phase is not RUNNING:  # a trigger fired meanwhile: the base bought is the close's to sell
            return []
        note, out = s.note, []
        left, short = _fill_idle(s, out)  # the sells it paid for, nearest first
        if filled < qty or left:
            _say(s, WARNING, Kind.refill, (f"{note}; " if s.notice and s.notice.kind is Kind.market_ended else "")
                 + f"refill bought {filled} of {qty} {s.p.base}"
                 + (f": {left} sell levels stay idle, {short} {s.p.base} short, until the next refill" if left else ""))
        else:
            _say(s, INFO, Kind.refill, f"refill done: bought {filled} {s.p.base}; no level is idle")
        return out
    if reason == "close":
        _say(s, INFO, Kind.close, f"close done: sold {filled} {s.p.base} at market")
    return []


def _complete(s: GridState, g: int, out: list[Intent]) -> None:
    """Gap g's leg is done (fully, or partly and then cancelled): flip it and place the counter-order."""
    gap = s.gaps[g]
    if gap.cid:
        _unlive(s, g)
    if gap.filled <= 0:
        return
    avg = gap.cost / gap.filled
    if gap.side is BUY:
        books = s.books
        net = gap.filled - gap.fee_base + books.dust
        sell_qty = round_down(net, s.p.step)
        # step rounding leaves dust; pool it so the next sell can carry it (else each cycle leaks a step)
        books.dust = net - sell_qty
        basis = (sell_qty + gap.fee_base) * avg + gap.fee_quote
        if sell_qty < s.p.min_qty:
            books.dust = net
            gap.reset_leg(None, ZERO)
            gap.basis = None
            _say(s, WARNING, Kind.dropped, f"gap {g}: filled buy nets {sell_qty}, below the minimum; level dropped")
            return
        gap.reset_leg(SELL, sell_qty)
        gap.basis = basis
    else:
        if gap.basis is not None:
            proceeds = gap.cost - gap.fee_quote - gap.fee_base * avg
            s.books.realised += proceeds - gap.basis
            s.books.pairs += 1
        gap.reset_leg(BUY, s.p.qty)
        gap.basis = None
    if s.phase is RUNNING or s.phase is PARKED:
        s.want.add(g)
        _try_place(s, g, out)
        for k in (g - 1, g + 1):  # this line may have been blocking a neighbour
            if k in s.want:
                _try_place(s, k, out)
    else:
        gap.reset_leg(None, ZERO)


def _on_gone(s: GridState, cid: int, rejected: bool, reason: str) -> list[Intent]:
    """An order left the book without (completely) filling."""
    if cid in s.markets:
        if rejected and s.markets[cid].reason == "close":
            return _close_rejected(s, cid, reason)
        _say(s, WARNING, Kind.market_ended,
             f"market {s.markets[cid].reason} order {cid} {'rejected' if rejected else 'ended'} ({reason})")
        return _market_done(s, cid)  # a rebalance that failed still places what the base allows
    g = s.by_cid.get(cid)
    if g is None:
        return []
    gap = s.gaps[g]
    out: list[Intent] = []
    if s.phase is PARKED or s.phase is STOPPED:
        _unlive(s, g)
        if s.phase is PARKED:
            s.want.add(g)
        elif gap.filled > 0:
            _complete(s, g, out)
        else:
            gap.reset_leg(None, ZERO)
        return out
    _unlive(s, g)
    if rejected:  # held: the runner releases it after a backoff (the venue said no just now)
        gap.rejects += 1
        s.held.add(g)
        _say(s, WARNING, Kind.rejected, f"gap {g}: order {cid} rejected ({reason}); retrying later ({gap.rejects} in a row)")
        return out
    # cancelled behind the bot's back (web UI, maintenance): place the rest of the leg again now
    if gap.filled > 0 and gap.qty - gap.filled < s.p.min_qty:
        _complete(s, g, out)  # the rest is below the minimum order: the leg is done, flip it
        return out
    _say(s, WARNING, Kind.cancelled_outside, f"gap {g}: order {cid} cancelled outside the bot; placing it again")
    s.want.add(g)
    _try_place(s, g, out)
    return out


def _on_stop(s: GridState, cancel: bool) -> list[Intent]:
    if not cancel or s.phase is not RUNNING:
        return []
    s.phase = PARKED
    return [Cancel(cid) for cid in sorted(s.by_cid)]


def _trigger(s: GridState, price: Decimal) -> list[Intent]:
    """Stop-loss / take-profit: cancel the grid; optionally sell the base at market."""
    kind = "stop-loss" if s.p.stop_loss is not None and price <= s.p.stop_loss else "take-profit"
    s.phase = STOPPED
    s.want.clear()
    s.held.clear()
    out: list[Intent] = [Cancel(cid) for cid in sorted(s.by_cid)]
    _say(s, WARNING, Kind.trigger, f"{kind} at {price}: grid cancelled")
    if s.p.sell_on_trigger:
        s.close_pending = True
        if _close_ready(s):
            out += _close(s)
    return out


def _close_ready(s: GridState) -> bool:
    """The close waits for every grid order to end, and for a refill's buy still in flight to book."""
    return not s.by_cid and not any(m.reason == "refill" for m in s.markets.values())


def _close(s: GridState) -> list[Intent]:
    """The trigger's market sell, sized only once every grid order has been cancelled or has
    filled: sized at trigger time, it would miss fills the venue made before our cancels landed."""
    s.close_pending = False
    qty = round_down(s.inventory, s.p.step)
    if qty < s.p.min_qty:
        return []
    cid = _cid(s)
    s.markets[cid] = MarketLeg("close", qty)
    _say(s, s.notice.level if s.notice is not None else INFO, Kind.close,
         s.note + f", close pending: selling {qty} {s.p.base} at market")
    return [Market(cid, SELL, qty, "close")]


def _close_rejected(s: GridState, cid: int, reason: str) -> list[Intent]:
    """The venue refused the close (often: it holds less than our books, e.g. coins moved away).
    The runner retries it with ``CloseRetry(available)``; after MAX_REJECTS refusals it is given up."""
    qty = s.markets.pop(cid).qty
    s.close_rejects += 1
    if s.close_rejects > MAX_REJECTS:
        s.close_retry = False
        _say(s, WARNING, Kind.given_up, f"close given up after {s.close_rejects} rejections ({reason}); "
                                        f"{s.inventory} {s.p.base} of the grid's own still held")
        return []
    s.close_retry = True
    _say(s, WARNING, Kind.close,
         f"close pending: sell of {qty} {s.p.base} rejected ({reason}); retrying capped by what the venue holds")
    return []


def _close_retry(s: GridState, available: Decimal) -> list[Intent]:
    """Resend the close for the grid's own position, never more than the venue says is available."""
    if not s.close_retry:
        return []
    s.close_retry = False
    qty = round_down(min(s.inventory, available), s.p.step)
    if qty < s.p.min_qty:
        _say(s, WARNING, Kind.given_up, f"close given up: the venue shows {available} {s.p.base} available, below "
                                        f"the minimum order; {s.inventory} {s.p.base} of the grid's own still held")
        return []
    cid = _cid(s)
    s.markets[cid] = MarketLeg("close", qty)
    _say(s, INFO, Kind.close, f"close pending: selling {qty} {s.p.base} at market (capped by {available} available)")
    return [Market(cid, SELL, qty, "close")]
