"""The grid machine's state: phases, slots (gaps), market legs, the books, and the snapshot.

``GridState.to_dict`` writes snapshot version 2: every field named (gaps and market legs as
objects). ``from_dict`` also reads version 1 (gaps and market legs as positional arrays, written
up to this release) and refuses any other version with ``SnapshotError``: a format it does not
know would otherwise be read wrongly and corrupt a restart.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Optional

from ..errors import SnapshotError
from ..records import Side
from ._events import Notice

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
SNAPSHOT_VERSION = 2


class Phase(StrEnum):
    """Where the grid stands. The value is the text shown in STATUS=, the figures and ``list``."""

    WAITING = "waiting"  # price outside the range or not seen yet: nothing placed
    REBALANCING = "rebalancing"  # market-buying the base the sells need
    RUNNING = "running"
    PARKED = "parked"  # orders cancelled on service stop; Resume places them again
    STOPPED = "stopped"  # stop-loss/take-profit fired: grid cancelled for good


WAITING, REBALANCING, RUNNING, PARKED, STOPPED = (Phase.WAITING, Phase.REBALANCING, Phase.RUNNING, Phase.PARKED,
                                                 Phase.STOPPED)


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
    """One slot. ``side`` None = idle (no base for its sell, or a buy netted below the minimum; a
    ``Refill`` gives it an order again). ``cid`` 0 = no live order."""

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


class MarketLeg:
    """A market order in flight: why (``rebalance`` buys the sells' base at start, ``refill`` buys what
    idle sells lack later, ``close`` sells the base after a trigger), how much, and how much has filled."""

    __slots__ = ("reason", "qty", "filled")

    def __init__(self, reason: str, qty: Decimal, filled: Decimal = ZERO) -> None:
        self.reason, self.qty, self.filled = reason, qty, filled

    @property
    def side(self) -> Side:
        return BUY if self.reason in ("rebalance", "refill") else SELL


class Books:
    """The grid's own accounting: what it was given and what its fills moved, fees, matched pairs."""

    __slots__ = ("base_start", "base_delta", "quote_delta", "fees_base", "fees_quote", "realised", "pairs", "fills",
                 "dust")
    MONEY = ("base_start", "base_delta", "quote_delta", "fees_base", "fees_quote", "realised", "dust")

    def __init__(self, base_start: Decimal) -> None:
        self.base_start = base_start  # base the grid was given (base_investment), not the account's
        self.base_delta = ZERO  # base gained by this grid's fills (after base fees)
        self.quote_delta = ZERO  # quote gained (after quote fees)
        self.fees_base = ZERO
        self.fees_quote = ZERO
        self.realised = ZERO  # matched buy->sell pairs only
        self.pairs = 0
        self.fills = 0
        self.dust = ZERO  # fee-net base below one step, carried into the next counter-sell

    @property
    def inventory(self) -> Decimal:
        return self.base_start + self.base_delta


def _books_field(name: str) -> property:
    """``state.realised`` etc. read and write ``state.books.realised`` (figures, runner, tests)."""
    return property(lambda s: getattr(s.books, name), lambda s, v: setattr(s.books, name, v))


class GridState:
    __slots__ = ("p", "phase", "price", "gaps", "by_cid", "want", "markets", "next_cid", "seen", "seen_order",
                 "retired", "books", "best_buy", "best_sell", "note", "notice", "lo", "hi", "close_pending", "epoch",
                 "close_retry", "close_rejects", "held", "band", "limits_ok", "markets_ok")

    def __init__(self, p: Params, base_budget: Decimal, epoch: int = 1) -> None:
        self.p = p
        self.phase = WAITING
        self.price: Optional[Decimal] = None
        self.gaps = [Gap() for _ in range(len(p.buy) - 1)]
        self.by_cid: dict[int, int] = {}
        self.want: set[int] = set()
        self.markets: dict[int, MarketLeg] = {}
        self.epoch = epoch  # 0 only in states saved before epochs existed: the runner gives one at once
        self.next_cid = 1  # the counter part of the next client id
        self.seen: set[str] = set()
        self.seen_order: deque[str] = deque()  # the window of SEEN_TRADES trade ids, oldest first
        # cid -> side of orders that left the grid (filled, cancelled, rejected): a fill that the venue
        # made just before a cancel but that we hear of after it must still reach the balances
        self.retired: dict[int, Side] = {}
        self.books = Books(base_budget)
        self.best_buy = -1  # highest gap with a live buy
        self.best_sell = -1  # lowest gap with a live sell
        self.note = ""  # last noteworthy thing, for logs/status
        self.notice: Optional[Notice] = None  # the same, typed (level, kind): set with every new note
        self.lo = self.hi = ZERO
        self.close_pending = False  # sell_on_trigger: sell the base once every grid order is gone
        self.close_retry = False  # the close was rejected: resend it capped by what the venue holds
        self.close_rejects = 0
        self.held: set[int] = set()  # gaps refused by the venue, waiting for the runner's Release
        self.band: Optional[tuple[Decimal, Decimal]] = None  # market rules (Rules): not persisted,
        self.limits_ok = True  # the runner feeds them at every start
        self.markets_ok = True
        set_thresholds(self)

    base_start = _books_field("base_start")
    base_delta = _books_field("base_delta")
    quote_delta = _books_field("quote_delta")
    fees_base = _books_field("fees_base")
    fees_quote = _books_field("fees_quote")
    realised = _books_field("realised")
    pairs = _books_field("pairs")
    fills = _books_field("fills")
    dust = _books_field("dust")

    # -- views
    @property
    def inventory(self) -> Decimal:
        return self.books.base_start + self.books.base_delta

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
        total = self.books.quote_delta + self.books.base_delta * price
        return total, total - self.books.realised

    @property
    def closing(self) -> str:
        """Where the trigger's close stands ("" when there is none)."""
        if self.close_pending:
            return "pending: waiting for the grid's cancels"
        if self.close_retry:
            return "pending: rejected, retrying"
        if any(m.reason == "close" for m in self.markets.values()):
            return "pending: sent"
        return ""

    # -- serialization (the store snapshots this as JSON)
    def to_dict(self) -> dict[str, Any]:
        p, b = self.p, self.books
        return {
            "v": SNAPSHOT_VERSION,
            "params": {"buy": [str(x) for x in p.buy], "sell": [str(x) for x in p.sell], "qty": str(p.qty),
                       "step": str(p.step), "min_qty": str(p.min_qty), "base": p.base, "quote": p.quote,
                       "market_fee": str(p.market_fee), "stop_loss": _s(p.stop_loss),
                       "take_profit": _s(p.take_profit), "sell_on_trigger": p.sell_on_trigger},
            "phase": self.phase.value, "price": _s(self.price), "next_cid": self.next_cid,
            "gaps": [{"side": g.side.value if g.side else None, "qty": str(g.qty), "filled": str(g.filled),
                      "cost": str(g.cost), "fee_base": str(g.fee_base), "fee_quote": str(g.fee_quote), "cid": g.cid,
                      "rejects": g.rejects, "basis": _s(g.basis)} for g in self.gaps],
            "want": sorted(self.want),
            "markets": {str(k): {"reason": m.reason, "qty": str(m.qty), "filled": str(m.filled)}
                        for k, m in self.markets.items()},
            "seen": list(self.seen_order),
            "retired": {str(k): v.value for k, v in self.retired.items()},
            **{k: str(getattr(b, k)) for k in Books.MONEY}, "pairs": b.pairs, "fills": b.fills,
            "note": self.note, "close_pending": self.close_pending,
            "epoch": self.epoch, "close_retry": self.close_retry, "close_rejects": self.close_rejects,
            "held": sorted(self.held),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GridState":
        """A state from ``to_dict``'s snapshot, version 2 or 1; SnapshotError for any other version."""
        v = d.get("v")
        if v not in (1, SNAPSHOT_VERSION):
            raise SnapshotError(f"the saved strategy state has format version {v!r}; "
                                f"this gridbot reads versions 1 to {SNAPSHOT_VERSION}")
        q = d["params"]
        p = Params(buy=tuple(map(Decimal, q["buy"])), sell=tuple(map(Decimal, q["sell"])), qty=Decimal(q["qty"]),
                   step=Decimal(q["step"]), min_qty=Decimal(q["min_qty"]), base=q["base"], quote=q["quote"],
                   market_fee=Decimal(q["market_fee"]), stop_loss=_d(q["stop_loss"]),
                   take_profit=_d(q["take_profit"]), sell_on_trigger=q["sell_on_trigger"])
        s = cls(p, Decimal(d["base_start"]), d.get("epoch", 0))
        s.phase, s.price, s.next_cid = Phase(d["phase"]), _d(d["price"]), d["next_cid"]
        for gap, row in zip(s.gaps, d["gaps"]):
            if v == 1:  # [side, qty, filled, cost, fee_base, fee_quote, cid, rejects, basis]
                row = dict(zip(("side", "qty", "filled", "cost", "fee_base", "fee_quote", "cid", "rejects", "basis"),
                               row))
            gap.side = Side(row["side"]) if row["side"] else None
            gap.qty, gap.filled, gap.cost = Decimal(row["qty"]), Decimal(row["filled"]), Decimal(row["cost"])
            gap.fee_base, gap.fee_quote = Decimal(row["fee_base"]), Decimal(row["fee_quote"])
            gap.cid, gap.rejects, gap.basis = row["cid"], row["rejects"], _d(row["basis"])
        s.by_cid = {g.cid: i for i, g in enumerate(s.gaps) if g.cid}
        s.want = set(d["want"])
        for k, m in d["markets"].items():  # v1: [reason, qty, filled]
            reason, qty, filled = m if v == 1 else (m["reason"], m["qty"], m["filled"])
            s.markets[int(k)] = MarketLeg(reason, Decimal(qty), Decimal(filled))
        s.seen_order = deque(d["seen"])
        s.seen = set(s.seen_order)
        s.retired = {int(k): Side(x) for k, x in d.get("retired", {}).items()}
        b = s.books
        for k in ("base_delta", "quote_delta", "fees_base", "fees_quote", "realised"):
            setattr(b, k, Decimal(d[k]))
        b.pairs, b.fills, s.note, b.dust = d["pairs"], d["fills"], d.get("note", ""), Decimal(d.get("dust", "0"))
        s.close_pending = d.get("close_pending", False)
        s.close_retry, s.close_rejects = d.get("close_retry", False), d.get("close_rejects", 0)
        s.held = set(d.get("held", ()))
        recompute_best(s)
        return s


def set_thresholds(s: GridState) -> None:
    """Cache stop-loss/take-profit as an open interval (lo, hi) so a tick costs one chained compare."""
    s.lo = s.p.stop_loss if s.p.stop_loss is not None else Decimal("-Infinity")
    s.hi = s.p.take_profit if s.p.take_profit is not None else Decimal("Infinity")


def recompute_best(s: GridState) -> None:
    s.best_buy = max((g for g in s.by_cid.values() if s.gaps[g].side is BUY), default=-1)
    s.best_sell = min((g for g in s.by_cid.values() if s.gaps[g].side is SELL), default=-1)


def _s(x: Optional[Decimal]) -> Optional[str]:
    return None if x is None else str(x)


def _d(x: Optional[str]) -> Optional[Decimal]:
    return None if x is None else Decimal(x)
