"""What goes into the grid machine (events) and what comes out (intents and notices). Plain values."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Optional, Union

from ..records import Side

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
class Refill:
    """Idle gaps (a sell the base did not cover, a buy netting below the minimum) should hold an order
    again: the runner sends this at a reconcile while any gap is idle, with backoff."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The venue's market rules now: ``band`` (min, max) multipliers of the last price a limit price
    must lie within (None: no band); ``limits``/``markets``: whether the book takes limit / market
    orders (Backpack's orderBookState: Open both, PostOnly/LimitOnly limits only, else neither)."""

    band: Optional[tuple[Decimal, Decimal]] = None
    limits: bool = True
    markets: bool = True


Event = Union[Tick, Filled, Rejected, Cancelled, Stop, Resume, SetLimits, NewEpoch, CloseRetry, Release, Refill,
              Rules]


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
    reason: str  # "rebalance" or "refill" (buys), "close" (sells)


Intent = Union[Place, Cancel, Market]


class Level(Enum):
    """How loud a notice is: ``warning`` when trading is not as configured (a level dropped or held,
    an order refused or cancelled outside the bot, a trigger, a close given up)."""

    info = "info"
    warning = "warning"


class Kind(str, Enum):
    """What a notice is about."""

    waiting = "waiting"  # the book takes no market orders: the start waits
    rebalance = "rebalance"  # buying the base the sells need
    grid = "grid"  # the grid was placed
    short = "short"  # the rebalance bought less than asked: sell levels stay idle until a refill
    refill = "refill"  # idle levels placed again; buying the base their sells need, or it fell short
    dropped = "dropped"  # a filled buy nets below the minimum order: its level is dropped
    market_ended = "market_ended"  # a market order was refused or ended unfilled
    rejected = "rejected"  # a level's order was refused: held, retried later
    cancelled_outside = "cancelled_outside"  # an order was cancelled behind the bot's back
    trigger = "trigger"  # stop-loss or take-profit fired
    close = "close"  # the trigger's close: pending, done
    given_up = "given_up"  # the close was refused too often, or the venue holds too little


@dataclass(frozen=True, slots=True)
class Notice:
    """The last noteworthy thing, typed: the runner logs ``text`` at ``level`` (never parses it)."""

    level: Level
    kind: Kind
    text: str
