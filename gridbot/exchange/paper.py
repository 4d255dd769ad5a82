"""The built-in paper exchange: a synchronous matching engine plus a seeded price stream.

Modules: ``_paper_venue`` (the matching engine), ``_prices`` (the price stream and CSV replay),
``_paper_snapshot`` (the versioned snapshot); ``PaperExchange`` here; all re-exported.

``PaperVenue`` is a plain synchronous object so other code (a fake Backpack HTTP server, tests) can
drive it directly. ``PaperExchange`` wraps it in the async ``Exchange`` Protocol and persists it
through the store, so a restarted bot finds its paper balances and orders where it left them.

Fee convention (Backpack's): the fee is taken from what you receive. A buy pays its fee in base
(you receive ``qty - fee`` base), a sell in quote (you receive ``qty*price - fee`` quote). Resting
orders pay the maker fee, market orders and marketable limits the taker fee. Collected fees are
kept in ``fees_collected`` so tests can prove nothing appears or vanishes.
"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Callable, Optional

from ..errors import ExchangeError
from ..records import Balance, Fill, Market, Order, Side
from . import _paper_snapshot
from ._paper_venue import KEEP_CLOSED, KEEP_FILLS, PaperVenue  # noqa: F401  (re-exported: tests drive the venue)
from ._prices import PriceStream, read_csv_prices  # noqa: F401  (re-exported: the factory and tests build streams)


class PaperExchange:
    """``Exchange`` over a PaperVenue. Each price step happens inside ``wait_event`` on a timer.

    ``save`` (venue snapshot -> store) runs after every change to orders or balances, and at least
    every ``save_every_s`` for the price position, so kill -9 loses at most a few price moves.
    """

    def __init__(self, venue: PaperVenue, stream: PriceStream, interval_s: float,
                 save: Optional[Callable[[dict[str, Any]], None]] = None, save_every_s: float = 30.0,
                 latency_s: float = 0.0) -> None:
        self.venue, self.stream, self.interval_s = venue, stream, interval_s
        self.latency_s = latency_s  # simulated network round trip, half before and half after the venue acts
        self._save = save
        self._save_every = save_every_s
        self._last_save = time.monotonic()
        self._next_tick = time.monotonic() + interval_s
        if venue.last_price is None:
            venue.set_price(stream.price)

    @classmethod
    def create(cls, market: Market, balances: dict[str, Decimal], maker_fee: Decimal, taker_fee: Decimal,
               stream: PriceStream, interval_s: float, saved: Optional[dict[str, Any]] = None,
               save: Optional[Callable[[dict[str, Any]], None]] = None,
               liquidity_per_tick: Optional[Decimal] = None, latency_s: float = 0.0) -> "PaperExchange":
        """A fresh venue, or the saved one (with its stream position) if there is one."""
        if saved:
            venue = PaperVenue.from_dict(saved["venue"])
            stream.n, stream.price = _paper_snapshot.stream_position(saved)
        else:
            venue = PaperVenue(market, balances, maker_fee, taker_fee, liquidity_per_tick=liquidity_per_tick)
        ex = cls(venue, stream, interval_s, save, latency_s=latency_s)
        if not saved:
            ex.persist()
        return ex

    rate_limited = False  # in-process: reads cost nothing

    @property
    def taker_fee(self) -> Decimal:
        return self.venue.taker_fee

    def snapshot(self) -> dict[str, Any]:
        return {"v": _paper_snapshot.VERSION, "venue": self.venue.to_dict(),
                "stream": {"n": self.stream.n, "price": str(self.stream.price)}}

    def persist(self) -> None:
        if self._save is not None:
            self._save(self.snapshot())
        self._last_save = time.monotonic()

    async def _leg(self, symbol: Optional[str] = None) -> None:
        """Half a simulated round trip; a crash in the second half is "venue acted, bot never heard"."""
        if symbol is not None and symbol != self.venue.market.symbol:
            raise ExchangeError(f"paper venue trades {self.venue.market.symbol}, not {symbol}")
        if self.latency_s:
            await asyncio.sleep(self.latency_s / 2)

    async def market(self, symbol: str) -> Market:
        await self._leg(symbol)
        return self.venue.market

    async def last_price(self, symbol: str) -> Decimal:
        await self._leg(symbol)
        return self.venue.last_price  # type: ignore[return-value]

    async def place_limit(self, symbol: str, side: Side, price: Decimal, qty: Decimal,
                          client_id: int, post_only: bool = True) -> Order:
        await self._leg(symbol)
        o = self.venue.place_limit(side, price, qty, client_id, post_only)
        self.persist()
        await self._leg()
        return o

    async def place_market(self, symbol: str, side: Side, qty: Decimal, client_id: int) -> Order:
        await self._leg(symbol)
        o = self.venue.place_market(side, qty, client_id)
        self.persist()
        await self._leg()
        return o

    async def cancel(self, symbol: str, client_id: int) -> None:
        await self._leg(symbol)
        self.venue.cancel(client_id)
        self.persist()
        await self._leg()

    async def get_order(self, symbol: str, client_id: int) -> Optional[Order]:
        await self._leg(symbol)
        return self.venue.get_order(client_id)

    async def open_orders(self, symbol: str) -> list[Order]:
        await self._leg(symbol)
        return self.venue.open_orders()

    async def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        await self._leg(symbol)
        return self.venue.fills_since(since_ms)

    async def balances(self) -> dict[str, Balance]:
        return self.venue.balances()

    async def wait_event(self, timeout: float) -> None:
        """Sleep until the next price step is due (or timeout); then take the step."""
        now = time.monotonic()
        delay = self._next_tick - now
        if delay > timeout:
            await asyncio.sleep(max(timeout, 0))
            return
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_tick = max(self._next_tick + self.interval_s, time.monotonic())
        fills = self.venue.set_price(self.stream.next())
        if fills or time.monotonic() - self._last_save >= self._save_every:
            self.persist()

    async def close(self) -> None:
        self.persist()
