"""The venue interface every exchange adapter implements.

The records it speaks (``Side``, ``Order``, ``Fill``, ``Market``, …) live in ``gridbot.records``
(they belong to the core); they are re-exported here so adapters can keep one import.

The paper exchange (``paper.py``) implements it in-process and doubles as the test fake; the
Backpack adapter (``backpack.py``) implements it over REST. The runner only sees this Protocol.

Idempotency: every order carries a ``client_id`` (u32, Backpack's ``clientId``) chosen by the
caller and written to the state store *before* the call, so a retry or a restart can look the
order up instead of placing it twice.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Optional, Protocol

from ..records import Balance, Fill, Market, Order, OrderStatus, Side

__all__ = ["Exchange", "Balance", "Fill", "Market", "Order", "OrderStatus", "Side"]


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
