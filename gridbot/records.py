"""The trading records every layer speaks: sides, order states, orders, fills, markets, balances.

Plain frozen dataclasses and enums, no I/O and no venue: the pure strategy, the grid maths, the
store and the figures import them from here; ``exchange/`` (the ``Exchange`` Protocol and the
venues) imports them too, and ``exchange.base`` re-exports them for older imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Optional

__all__ = ["Side", "OrderStatus", "Market", "Order", "Fill", "Balance"]


class Side(str, Enum):
    buy = "buy"
    sell = "sell"


class OrderStatus(str, Enum):
    open = "open"  # resting, possibly partially filled
    filled = "filled"
    cancelled = "cancelled"
    rejected = "rejected"


@dataclass(frozen=True)
class Market:
    """Trading rules of one symbol.

    ``price_band`` is ``(min, max)`` multipliers of the venue's last price: a limit price outside
    ``last × min .. last × max`` is refused (Backpack's ``filters.price.minMultiplier`` /
    ``maxMultiplier``); None when the venue sets no band. ``state`` is the order book's state
    (Backpack's ``orderBookState``: ``Open``, ``Closed``, ``CancelOnly``, ``LimitOnly``,
    ``PostOnly``); only ``Open`` takes every kind of order.
    """

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    price_band: Optional[tuple[Decimal, Decimal]] = None
    state: str = "Open"


@dataclass(frozen=True)
class Order:
    """An order as the venue reports it. ``reason`` says why a closed order ended without filling
    (the venue's expiry reason, e.g. ``PostOnlyTaker``), None otherwise."""

    client_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    filled_qty: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.open
    exchange_id: str = ""
    reason: Optional[str] = None


@dataclass(frozen=True)
class Fill:
    """One execution. ``trade_id`` is unique per venue and makes fill recording idempotent; ``order_id``
    (the venue's id of the order, "" if the venue does not say) tells our order from another one that
    reuses its client id."""

    trade_id: str
    client_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool = True
    timestamp_ms: int = 0
    order_id: str = ""


@dataclass(frozen=True)
class Balance:
    asset: str
    available: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.locked
