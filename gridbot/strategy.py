"""The grid as a pure state machine: ``step(state, event) -> (state, intents)``. No I/O, no clock.

Slots follow bbgo's twin orders: gap ``k`` (between lines k and k+1) holds either a BUY at line k or
a SELL at line k+1, never both. A completed buy flips its gap to a sell one line up for the filled
quantity net of base fees; a completed sell flips it back to a buy of the configured size. Partial
fills wait for completion (bbgo/hummingbot), so a counter-order is never smaller than needed.

Two gaps share each line (gap k-1 sells at line k, gap k buys there); a flip that would put a buy
and a sell on the same line is held back ("wanted") until the neighbour moves. So is an order that
would cross the last price (post-only), one outside the venue's price band, and every order while
the book takes no limit orders (``Rules``); wanted orders are retried on the next tick. Ticks cost
O(1): compare with stop-loss/take-profit and, only if something is wanted, retry.

Lost levels come back (issue 9): a level the venue refused or closed at once (post-only
``Expired``) is *held*; the runner releases it after a backoff (``Release``), so it is retried
later, never given up. A level cancelled behind the bot's back is placed again at once. A market
order that ends without (fully) filling is a cancellation: the rebalance places what the base
allows. ``missing(s)`` lists the levels without a live order, for status and health.

``step`` mutates and returns ``state`` for speed (a million ticks a second); use
``GridState.from_dict(s.to_dict())`` to keep an old copy.

Client ids are ``epoch << 18 | counter``: the epoch (14 bits, 1..16383) is handed out per account by
the runner's registry, so no two states on one account (other instances, or this name rebuilt with
fresh state) can produce the same id; the counter (18 bits) numbers this state's orders. The machine
never picks an epoch itself (that needs I/O): it raises if the counter runs out, and the runner feeds
``NewEpoch`` before that can happen (``needs_epoch``).

Coins: the grid owns only its budget, ``base_budget`` (config ``base_investment``) plus what its own
fills moved; the account's other coins are never counted, sold or closed.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional, Union

from .records import Side
from .grid import nearest_line, round_down, round_up

BUY, SELL = Side.buy, Side.sell
ZERO = Decimal(0)
MAX_REJECTS = 3  # a close rejected this often is given up (levels are never given up: they are held and retried)
SEEN_TRADES = 4096  # duplicate trade ids are dropped within this window (the store dedups forever)
RETIRED_ORDERS = 256  # late fills are seconds late at most; a few hundred recent orders cover it
U32 = 0xFFFFFFFF
COUNTER_BITS = 18
COUNTER_MAX = (1 << COUNTER_BITS) - 1  # 262143 orders per epoch
EPOCH_MAX = (1 << (32 - COUNTER_BITS)) - 1  # 16383 epochs per account
EPOCH_HEADROOM = 4096  # > the most ids one step can take (a 500-level grid placed at once, plus a market)

WAITING = "waiting"  # price outside the range or not seen yet: nothing placed
REBALANCING = "rebalancing"  # market-buying the base the sells need
RUNNING = "running"
PARKED = "parked"  # orders cancelled on service stop; Resume places them again
STOPPED = "stopped"  # stop-loss/take-profit fired: grid cancelled for good
PHASES = {p: p for p in (WAITING, REBALANCING, RUNNING, PARKED, STOPPED)}  # phases compare by identity


# ---------------------------------------------------------------- events and intents

@dataclass(frozen=True, slots=True)
class Tick:
    price: Decimal


@dataclass(frozen=True, slots=True)
class Filled:
    client_id: int
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    trade_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The venue refused the order, or it was never placed (found missing on reconcile)."""

    client_id: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Cancelled:
    client_id: int


@dataclass(frozen=True, slots=True)
class Stop:
    """The service is stopping; ``cancel`` is on_stop=cancel (orders come back on Resume)."""

    cancel: bool


@dataclass(frozen=True, slots=True)
class Resume:
    """The service started again: re-place what Stop cancelled."""


@dataclass(frozen=True, slots=True)
class SetLimits:
    """Config reload: thresholds that can change without re-gridding."""

    stop_loss: Optional[Decimal]
    take_profit: Optional[Decimal]
    sell_on_trigger: bool


@dataclass(frozen=True, slots=True)
class NewEpoch:
    """The runner obtained a fresh epoch: number the next orders in it from counter 1."""

    epoch: int


@dataclass(frozen=True, slots=True)
class CloseRetry:
    """A rejected close is retried: what the venue reports available of the base right now."""

    available: Decimal


@dataclass(frozen=True, slots=True)
class Release:
    """The backoff of these held (rejected) gaps has passed: want them again."""

    gaps: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """The venue's market rules now: ``band`` (min, max) multipliers of the last price a limit price
    must lie within (None: no band); ``limits``/``markets``: whether the book takes limit / market
    orders (Backpack's orderBookState: Open both, PostOnly/LimitOnly limits only, else neither)."""

    band: Optional[tuple[Decimal, Decimal]] = None
    limits: bool = True
    markets: bool = True


Event = Union[Tick, Filled, Rejected, Cancelled, Stop, Resume, SetLimits, NewEpoch, CloseRetry, Release, Rules]


@dataclass(frozen=True, slots=True)
class Place:
    client_id: int
    side: Side
    price: Decimal
    qty: Decimal
    gap: int


@dataclass(frozen=True, slots=True)
class Cancel:
    client_id: int


@dataclass(frozen=True, slots=True)
class Market:
    client_id: int
    side: Side
    qty: Decimal
    reason: str  # "rebalance" or "close"


Intent = Union[Place, Cancel, Market]


# ---------------------------------------------------------------- state

@dataclass(frozen=True)
class Params:
    """Everything the machine needs from config and market, already rounded."""

    buy: tuple[Decimal, ...]  # per line
    sell: tuple[Decimal, ...]
    qty: Decimal
    step: Decimal
    min_qty: Decimal
    base: str
    quote: str
    market_fee: Decimal = Decimal("0.001")  # buffer when market-buying base (fee charged in base)
    stop_loss: Optional[Decimal] = None
    take_profit: Optional[Decimal] = None
    sell_on_trigger: bool = False


class Gap:
    """One slot. ``side`` None = idle (given up). ``cid`` 0 = no live order."""

    __slots__ = ("side", "qty", "filled", "cost", "fee_base", "fee_quote", "cid", "rejects", "basis")

    def __init__(self, side: Optional[Side] = None, qty: Decimal = ZERO) -> None:
        self.side = side
        self.qty = qty  # target qty of the current leg
        self.filled = ZERO  # executed so far in this leg (across re-placements)
        self.cost = ZERO  # sum(price * qty) of this leg's fills
        self.fee_base = ZERO
        self.fee_quote = ZERO
        self.cid = 0
        self.rejects = 0
        self.basis: Optional[Decimal] = None  # quote cost of the buy leg now being sold: profit basis

    def reset_leg(self, side: Optional[Side], qty: Decimal) -> None:
        self.side, self.qty = side, qty
        self.filled = self.cost = self.fee_base = self.fee_quote = ZERO
        self.rejects = 0


class GridState:
    __slots__ = ("p", "phase", "price", "gaps", "by_cid", "want", "markets", "next_cid", "seen", "seen_order",
                 "retired", "base_start", "base_delta", "quote_delta", "fees_base", "fees_quote", "realised", "pairs",
                 "fills", "best_buy", "best_sell", "note", "dust", "lo", "hi", "close_pending", "epoch",
                 "close_retry", "close_rejects", "held", "band", "limits_ok", "markets_ok")

    def __init__(self, p: Params, base_budget: Decimal, epoch: int = 1) -> None:
        self.p = p
        self.phase = WAITING
        self.price: Optional[Decimal] = None
        self.gaps = [Gap() for _ in range(len(p.buy) - 1)]
        self.by_cid: dict[int, int] = {}
        self.want: set[int] = set()
        self.markets: dict[int, list] = {}  # cid -> [reason, qty, filled]
        self.epoch = epoch  # 0 only in states saved before epochs existed: the runner gives one at once
        self.next_cid = 1  # the counter part of the next client id
        self.seen: set[str] = set()
        self.seen_order: list[str] = []
        # cid -> side of orders that left the grid (filled, cancelled, rejected): a fill that the venue
        # made just before a cancel but that we hear of after it must still reach the balances
        self.retired: dict[int, Side] = {}
        self.base_start = base_budget  # base the grid was given (base_investment), not the account's
        self.base_delta = ZERO  # base gained by this grid's fills (after base fees)
        self.quote_delta = ZERO  # quote gained (after quote fees)
        self.fees_base = ZERO
        self.fees_quote = ZERO
        self.realised = ZERO  # matched buy->sell pairs only
        self.pairs = 0
        self.fills = 0
        self.best_buy = -1  # highest gap with a live buy
        self.best_sell = -1  # lowest gap with a live sell
        self.note = ""  # last noteworthy thing, for logs/status
        self.dust = ZERO  # fee-net base below one step, carried into the next counter-sell
        self.lo = self.hi = ZERO
        self.close_pending = False  # sell_on_trigger: sell the base once every grid order is gone
        self.close_retry = False  # the close was rejected: resend it capped by what the venue holds
        self.close_rejects = 0
        self.held: set[int] = set()  # gaps refused by the venue, waiting for the runner's Release
        self.band: Optional[tuple[Decimal, Decimal]] = None  # market rules (Rules): not persisted,
        self.limits_ok = True  # the runner feeds them at every start
        self.markets_ok = True
        _set_thresholds(self)

    # -- views
    @property
    def inventory(self) -> Decimal:
        return self.base_start + self.base_delta

    def live(self) -> dict[int, tuple[int, Side, Decimal, Decimal]]:
        """cid -> (gap, side, price, remaining qty) of every order the machine believes is resting."""
        out = {}
        for cid, g in self.by_cid.items():
            gap = self.gaps[g]
            price = self.p.buy[g] if gap.side is BUY else self.p.sell[g + 1]
            out[cid] = (g, gap.side, price, gap.qty - gap.filled)
        return out

    def best_prices(self) -> tuple[Optional[Decimal], Optional[Decimal]]:
        """(nearest resting buy, nearest resting sell): what the next price move would fill."""
        b = self.p.buy[self.best_buy] if self.best_buy >= 0 else None
        s = self.p.sell[self.best_sell + 1] if self.best_sell >= 0 else None
        return b, s

    def pnl(self, price: Decimal) -> tuple[Decimal, Decimal]:
        """(total, unpaired): mark-to-market of all fills, and the part not from matched pairs."""
        total = self.quote_delta + self.base_delta * price
        return total, total - self.realised

    @property
    def closing(self) -> str:
        """Where the trigger's close stands ("" when there is none)."""
        if self.close_pending:
            return "pending: waiting for the grid's cancels"
        if self.close_retry:
            return "pending: rejected, retrying"
        if any(m[0] == "close" for m in self.markets.values()):
            return "pending: sent"
        return ""

    # -- serialization (the store snapshots this as JSON)
    def to_dict(self) -> dict[str, Any]:
        p = self.p
        return {
            "v": 1,
            "params": {"buy": [str(x) for x in p.buy], "sell": [str(x) for x in p.sell], "qty": str(p.qty),
                       "step": str(p.step), "min_qty": str(p.min_qty), "base": p.base, "quote": p.quote,
                       "market_fee": str(p.market_fee), "stop_loss": _s(p.stop_loss),
                       "take_profit": _s(p.take_profit), "sell_on_trigger": p.sell_on_trigger},
            "phase": self.phase, "price": _s(self.price), "next_cid": self.next_cid,
            "gaps": [[g.side.value if g.side else None, str(g.qty), str(g.filled), str(g.cost), str(g.fee_base),
                      str(g.fee_quote), g.cid, g.rejects, _s(g.basis)] for g in self.gaps],
            "want": sorted(self.want),
            "markets": {str(k): [v[0], str(v[1]), str(v[2])] for k, v in self.markets.items()},
            "seen": list(self.seen_order),
            "retired": {str(k): v.value for k, v in self.retired.items()},
            "base_start": str(self.base_start), "base_delta": str(self.base_delta),
            "quote_delta": str(self.quote_delta), "fees_base": str(self.fees_base),
            "fees_quote": str(self.fees_quote), "realised": str(self.realised), "pairs": self.pairs,
            "fills": self.fills, "note": self.note, "dust": str(self.dust), "close_pending": self.close_pending,
            "epoch": self.epoch, "close_retry": self.close_retry, "close_rejects": self.close_rejects,
            "held": sorted(self.held),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GridState":
        q = d["params"]
        p = Params(buy=tuple(map(Decimal, q["buy"])), sell=tuple(map(Decimal, q["sell"])), qty=Decimal(q["qty"]),
                   step=Decimal(q["step"]), min_qty=Decimal(q["min_qty"]), base=q["base"], quote=q["quote"],
                   market_fee=Decimal(q["market_fee"]), stop_loss=_d(q["stop_loss"]),
                   take_profit=_d(q["take_profit"]), sell_on_trigger=q["sell_on_trigger"])
        s = cls(p, Decimal(d["base_start"]), d.get("epoch", 0))
        s.phase, s.price, s.next_cid = PHASES[d["phase"]], _d(d["price"]), d["next_cid"]
        for gap, row in zip(s.gaps, d["gaps"]):
            gap.side = Side(row[0]) if row[0] else None
            gap.qty, gap.filled, gap.cost, gap.fee_base, gap.fee_quote = map(Decimal, row[1:6])
            gap.cid, gap.rejects, gap.basis = row[6], row[7], _d(row[8])
        s.by_cid = {g.cid: i for i, g in enumerate(s.gaps) if g.cid}
        s.want = set(d["want"])
        s.markets = {int(k): [v[0], Decimal(v[1]), Decimal(v[2])] for k, v in d["markets"].items()}
        s.seen_order = list(d["seen"])
        s.seen = set(s.seen_order)
        s.retired = {int(k): Side(v) for k, v in d.get("retired", {}).items()}
        for k in ("base_delta", "quote_delta", "fees_base", "fees_quote", "realised"):
            setattr(s, k, Decimal(d[k]))
        s.pairs, s.fills, s.note, s.dust = d["pairs"], d["fills"], d.get("note", ""), Decimal(d.get("dust", "0"))
        s.close_pending = d.get("close_pending", False)
        s.close_retry, s.close_rejects = d.get("close_retry", False), d.get("close_rejects", 0)
        s.held = set(d.get("held", ()))
        _recompute_best(s)
        return s


def _set_thresholds(s: GridState) -> None:
    """Cache stop-loss/take-profit as an open interval (lo, hi) so a tick costs one chained compare."""
    s.lo = s.p.stop_loss if s.p.stop_loss is not None else Decimal("-Infinity")
    s.hi = s.p.take_profit if s.p.take_profit is not None else Decimal("Infinity")


def _s(x: Optional[Decimal]) -> Optional[str]:
    return None if x is None else str(x)


def _d(x: Optional[str]) -> Optional[Decimal]:
    return None if x is None else Decimal(x)


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
    minimum). Empty unless the grid is running."""
    if s.phase is not RUNNING:
        return []
    return [g for g, gap in enumerate(s.gaps) if not gap.cid]


# ---------------------------------------------------------------- transitions

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
        if s.close_pending and not s.by_cid:
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
    if isinstance(ev, Rules):
        s.band, s.limits_ok, s.markets_ok = ev.band, ev.limits, ev.markets
        return s, _retry(s) if s.want else []
    if isinstance(ev, SetLimits):
        old = s.p
        s.p = Params(old.buy, old.sell, old.qty, old.step, old.min_qty, old.base, old.quote, old.market_fee,
                     ev.stop_loss, ev.take_profit, ev.sell_on_trigger)
        _set_thresholds(s)
        return s, []
    raise TypeError(f"unknown event {ev!r}")


def _cid(s: GridState) -> int:
    c = s.next_cid
    if c > COUNTER_MAX or s.epoch == 0:  # the runner keeps EPOCH_HEADROOM ids spare: a bug, not a state
        raise RuntimeError(f"client-id counter of epoch {s.epoch} exhausted; NewEpoch was not fed")
    s.next_cid = c + 1
    return s.epoch << COUNTER_BITS | c


def _start(s: GridState) -> list[Intent]:
    """First in-range price: buy the base the sells need, or place the grid right away."""
    need = _sell_count(s) * s.p.qty
    have = s.inventory
    if have < need:
        if not s.markets_ok:  # the book takes no market orders now: wait (re-tried on every tick)
            s.note = f"waiting: the book takes no market orders, and the sells need {need - have} {s.p.base} more"
            return []
        qty = round_up((need - have) / (1 - s.p.market_fee), s.p.step)
        qty = max(qty, s.p.min_qty)
        cid = _cid(s)
        s.markets[cid] = ["rebalance", qty, ZERO]
        s.phase = REBALANCING
        s.note = f"buying {qty} {s.p.base} for the sells"
        return [Market(cid, BUY, qty, "rebalance")]
    return _place_grid(s)


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
    s.note = f"grid placed around line {e}"
    return _retry(s)


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


def _recompute_best(s: GridState) -> None:
    s.best_buy = max((g for g in s.by_cid.values() if s.gaps[g].side is BUY), default=-1)
    s.best_sell = min((g for g in s.by_cid.values() if s.gaps[g].side is SELL), default=-1)


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


def _seen(s: GridState, trade_id: str) -> bool:
    if trade_id in s.seen:
        return True
    s.seen.add(trade_id)
    s.seen_order.append(trade_id)
    if len(s.seen_order) > SEEN_TRADES:
        s.seen.discard(s.seen_order.pop(0))
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
    side = s.gaps[g].side if g is not None else (BUY if m[0] == "rebalance" else SELL)  # type: ignore[index]
    fee_b, fee_q, notional = _book(s, side, f)  # type: ignore[arg-type]
    if m is not None:
        m[2] += f.qty
        if m[2] >= m[1]:
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
    s.fills += 1
    fee_b = f.fee if f.fee_asset == s.p.base else ZERO
    fee_q = f.fee if f.fee_asset == s.p.quote else ZERO
    notional = f.qty * f.price
    if side is BUY:
        s.base_delta += f.qty - fee_b
        s.quote_delta -= notional + fee_q
    else:
        s.base_delta -= f.qty + fee_b
        s.quote_delta += notional - fee_q
    s.fees_base += fee_b
    s.fees_quote += fee_q
    return fee_b, fee_q, notional


def _market_done(s: GridState, cid: int) -> list[Intent]:
    reason, qty, filled = s.markets.pop(cid)
    s.retired[cid] = BUY if reason == "rebalance" else SELL  # a fill heard of later still reaches the books
    if len(s.retired) > RETIRED_ORDERS:
        del s.retired[next(iter(s.retired))]
    if reason == "rebalance" and s.phase is REBALANCING:
        if filled < qty:
            note = s.note
            out = _place_grid(s)
            idle = sum(1 for gap in s.gaps if gap.side is None)
            s.note = f"{note}; bought {filled} of {qty} {s.p.base}" + (
                f": {idle} sell levels stay empty (not enough base)" if idle else "")
            return out
        return _place_grid(s)
    if reason == "close":
        s.note = f"close done: sold {filled} {s.p.base} at market"
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
        net = gap.filled - gap.fee_base + s.dust
        sell_qty = round_down(net, s.p.step)
        # step rounding leaves dust; pool it so the next sell can carry it (else each cycle leaks a step)
        s.dust = net - sell_qty
        basis = (sell_qty + gap.fee_base) * avg + gap.fee_quote
        if sell_qty < s.p.min_qty:
            s.dust = net
            gap.reset_leg(None, ZERO)
            gap.basis = None
            s.note = f"gap {g}: filled buy nets {sell_qty}, below the minimum; level dropped"
            return
        gap.reset_leg(SELL, sell_qty)
        gap.basis = basis
    else:
        if gap.basis is not None:
            proceeds = gap.cost - gap.fee_quote - gap.fee_base * avg
            s.realised += proceeds - gap.basis
            s.pairs += 1
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
        if rejected and s.markets[cid][0] == "close":
            return _close_rejected(s, cid, reason)
        s.note = f"market {s.markets[cid][0]} order {cid} {'rejected' if rejected else 'ended'} ({reason})"
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
        s.note = f"gap {g}: order {cid} rejected ({reason}); retrying later ({gap.rejects} in a row)"
        return out
    # cancelled behind the bot's back (web UI, maintenance): place the rest of the leg again now
    if gap.filled > 0 and gap.qty - gap.filled < s.p.min_qty:
        _complete(s, g, out)  # the rest is below the minimum order: the leg is done, flip it
        return out
    s.note = f"gap {g}: order {cid} cancelled outside the bot; placing it again"
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
    s.note = f"{kind} at {price}: grid cancelled"
    if s.p.sell_on_trigger:
        s.close_pending = True
        if not s.by_cid:
            out += _close(s)
    return out


def _close(s: GridState) -> list[Intent]:
    """The trigger's market sell, sized only once every grid order has been cancelled or has
    filled: sized at trigger time, it would miss fills the venue made before our cancels landed."""
    s.close_pending = False
    qty = round_down(s.inventory, s.p.step)
    if qty < s.p.min_qty:
        return []
    cid = _cid(s)
    s.markets[cid] = ["close", qty, ZERO]
    s.note += f", close pending: selling {qty} {s.p.base} at market"
    return [Market(cid, SELL, qty, "close")]


def _close_rejected(s: GridState, cid: int, reason: str) -> list[Intent]:
    """The venue refused the close (often: it holds less than our books, e.g. coins moved away).
    The runner retries it with ``CloseRetry(available)``; after MAX_REJECTS refusals it is given up."""
    qty = s.markets.pop(cid)[1]
    s.close_rejects += 1
    if s.close_rejects > MAX_REJECTS:
        s.close_retry = False
        s.note = (f"close given up after {s.close_rejects} rejections ({reason}); "
                  f"{s.inventory} {s.p.base} of the grid's own still held")
        return []
    s.close_retry = True
    s.note = f"close pending: sell of {qty} {s.p.base} rejected ({reason}); retrying capped by what the venue holds"
    return []


def _close_retry(s: GridState, available: Decimal) -> list[Intent]:
    """Resend the close for the grid's own position, never more than the venue says is available."""
    if not s.close_retry:
        return []
    s.close_retry = False
    qty = round_down(min(s.inventory, available), s.p.step)
    if qty < s.p.min_qty:
        s.note = (f"close given up: the venue shows {available} {s.p.base} available, below the minimum "
                  f"order; {s.inventory} {s.p.base} of the grid's own still held")
        return []
    cid = _cid(s)
    s.markets[cid] = ["close", qty, ZERO]
    s.note = f"close pending: selling {qty} {s.p.base} at market (capped by {available} available)"
    return [Market(cid, SELL, qty, "close")]
