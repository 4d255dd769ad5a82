"""The venue interface every exchange adapter implements, and the records it speaks.

The paper exchange (``paper.py``) implements it in-process and doubles as the test fake; the
Backpack adapter (``backpack.py``) implements it over REST. The runner only sees this Protocol.

Idempotency: every order carries a ``client_id`` (u32, Backpack's ``clientId``) chosen by the
caller and written to the state store *before* the call, so a retry or a restart can look the
order up instead of placing it twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Optional, Protocol


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


class Exchange(Protocol):
    """What the bot needs from a venue. All methods may raise ``errors.ExchangeError``."""

    taker_fee: Decimal
    """Fee rate of a market order (a taker), which the strategy plans its rebalances with."""
    rate_limited: bool
    """True when every request spends a rate budget (a real venue): the bot then reads balances
    for its status only every half minute; False (the in-process paper venue): after every pass
    that sent orders, too."""

    async def market(self, symbol: str) -> Market: ...

    async def last_price(self, symbol: str) -> Decimal: ...

    async def place_limit(self, symbol: str, side: Side, price: Decimal, qty: Decimal,
                          client_id: int, post_only: bool = True) -> Order: ...

    async def place_market(self, symbol: str, side: Side, qty: Decimal, client_id: int) -> Order: ...

    async def cancel(self, symbol: str, client_id: int) -> None: ...

    async def get_order(self, symbol: str, client_id: int) -> Optional[Order]: ...

    async def open_orders(self, symbol: str) -> list[Order]: ...

    async def fills_since(self, symbol: str, since_ms: int) -> list[Fill]: ...

    async def balances(self) -> dict[str, Balance]: ...

    async def wait_event(self, timeout: float) -> None:
        """Block until prices moved or orders filled (or timeout); then poll ``fills_since``/``last_price``."""

    async def close(self) -> None: ...
