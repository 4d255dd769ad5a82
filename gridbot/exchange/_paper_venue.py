"""The paper venue's matching engine: resting limit orders matched against a last price.

``PaperVenue`` is a plain synchronous object, so other code (the fake Backpack HTTP server, tests)
can drive it directly; ``paper.PaperExchange`` wraps it in the async ``Exchange`` Protocol. Fees
follow Backpack's convention (see ``paper``). Its snapshot is ``_paper_snapshot``.
"""
from __future__ import annotations

import time
from bisect import bisect_left, insort
from dataclasses import replace
from decimal import Decimal
from typing import Any, Callable, Optional

from ..errors import OrderRejected
from ..records import Balance, Fill, Market, Order, OrderStatus, Side
from . import _paper_snapshot

KEEP_FILLS = 500  # fills kept for fills_since(); a bot reads them within seconds (snapshot stays small)
KEEP_CLOSED = 2000  # closed orders kept for get_order() on reconcile


def _wall_ms() -> int:
    return int(time.time() * 1000)


class PaperVenue:
    """Resting limit orders matched against a last price that the caller moves with ``set_price``."""

    def __init__(self, market: Market, balances: dict[str, Decimal], maker_fee: Decimal, taker_fee: Decimal,
                 *, liquidity_per_tick: Optional[Decimal] = None, clock: Callable[[], int] = _wall_ms) -> None:
        self.market = market
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.liquidity_per_tick = liquidity_per_tick  # max base filled per order per set_price; None = all
        self._clock = clock
        self._avail = {market.base: Decimal(0), market.quote: Decimal(0)}
        self._locked = {market.base: Decimal(0), market.quote: Decimal(0)}
        for asset, amount in balances.items():
            self._avail[asset] = Decimal(amount)
            self._locked.setdefault(asset, Decimal(0))
        self.fees_collected = {market.base: Decimal(0), market.quote: Decimal(0)}
        self.last_price: Optional[Decimal] = None
        self._orders: dict[int, Order] = {}  # open and recently closed, by client_id
        self._closed: list[int] = []
        self._bids: list[tuple[Decimal, int, int]] = []  # (price, seq, cid) ascending; best = last
        self._asks: list[tuple[Decimal, int, int]] = []  # best = first
        self._seq = 0
        self._trade_seq = 0
        self._order_seq = 0  # the venue's own order ids: P1, P2, ... (never derived from the client id)
        self._fills: list[Fill] = []
        self._last_ms = 0

    # ------------------------------------------------------------ helpers
    def _now(self) -> int:
        self._last_ms = max(self._last_ms, self._clock())  # monotonic even if the wall clock steps back
        return self._last_ms

    def _check(self, side: Side, price: Optional[Decimal], qty: Decimal, client_id: int) -> None:
        m = self.market
        if not (0 <= client_id <= 0xFFFFFFFF):
            raise OrderRejected(f"client_id {client_id} is not a u32")
        if client_id in self._orders:
            raise OrderRejected(f"duplicate client_id {client_id}")
        if qty <= 0 or qty % m.step_size != 0:
            raise OrderRejected(f"quantity {qty} is not a positive multiple of the step size {m.step_size}")
        if qty < m.min_qty:
            raise OrderRejected(f"quantity {qty} is below the minimum {m.min_qty}")
        if price is not None and (price <= 0 or price % m.tick_size != 0):
            raise OrderRejected(f"price {price} is not a positive multiple of the tick size {m.tick_size}")

    def _lock(self, asset: str, amount: Decimal, what: str) -> None:
        if self._avail.get(asset, Decimal(0)) < amount:
            raise OrderRejected(f"insufficient {asset}: {what} needs {amount}, "
                                f"available {self._avail.get(asset, Decimal(0))}")
        self._avail[asset] -= amount
        self._locked[asset] = self._locked.get(asset, Decimal(0)) + amount

    def _close(self, o: Order, status: OrderStatus) -> Order:
        o = replace(o, status=status)
        self._orders[o.client_id] = o
        self._closed.append(o.client_id)
        if len(self._closed) > KEEP_CLOSED:
            self._orders.pop(self._closed.pop(0), None)
        return o

    def _execute(self, o: Order, price: Decimal, qty: Decimal, maker: bool, locked: bool) -> Fill:
        """Move balances for one execution; ``locked`` = the paying side was reserved at placement."""
        m = self.market
        rate = self.maker_fee if maker else self.taker_fee
        notional = price * qty
        if o.side is Side.buy:
            pay = notional if not locked else o.price * qty  # a buy reserved qty*limit price
            fee = qty * rate
            if locked:
                self._locked[m.quote] -= pay
                self._avail[m.quote] += pay - notional  # price improvement returns to available
            else:
                self._avail[m.quote] -= notional
            self._avail[m.base] += qty - fee
            self.fees_collected[m.base] += fee
            fee_asset = m.base
        else:
            fee = notional * rate
            if locked:
                self._locked[m.base] -= qty
            else:
                self._avail[m.base] -= qty
            self._avail[m.quote] += notional - fee
            self.fees_collected[m.quote] += fee
            fee_asset = m.quote
        self._trade_seq += 1
        f = Fill(trade_id=f"p{self._trade_seq}", client_id=o.client_id, symbol=m.symbol, side=o.side,
                 price=price, qty=qty, fee=fee, fee_asset=fee_asset, is_maker=maker, timestamp_ms=self._now(),
                 order_id=o.exchange_id)
        self._fills.append(f)
        if len(self._fills) > KEEP_FILLS:
            del self._fills[: len(self._fills) - KEEP_FILLS]
        return f

    def _next_order_id(self) -> str:
        self._order_seq += 1
        return f"P{self._order_seq}"

    def continue_ids(self, trade_seq: int, order_seq: int) -> None:
        """A venue rebuilt in place of an older one goes on numbering trades and orders after it."""
        self._trade_seq = max(self._trade_seq, trade_seq)
        self._order_seq = max(self._order_seq, order_seq)

    # ------------------------------------------------------------ public API
    def place_limit(self, side: Side, price: Decimal, qty: Decimal, client_id: int, post_only: bool = True) -> Order:
        """Rest a limit order (or, without post_only, take at the last price if it crosses)."""
        side = Side(side)
        self._check(side, price, qty, client_id)
        crosses = self.last_price is not None and (
            price >= self.last_price if side is Side.buy else price <= self.last_price)
        if crosses and post_only:
            raise OrderRejected(f"post-only {side.value} at {price} would cross the last price {self.last_price}")
        m = self.market
        if side is Side.buy:
            self._lock(m.quote, price * qty, f"buy {qty} @ {price}")
        else:
            self._lock(m.base, qty, f"sell {qty} @ {price}")
        o = Order(client_id=client_id, symbol=m.symbol, side=side, price=price, qty=qty,
                  exchange_id=self._next_order_id())
        self._orders[client_id] = o
        if crosses:
            fill = self._execute(o, self.last_price, qty, maker=False, locked=True)  # type: ignore[arg-type]
            return self._close(replace(o, filled_qty=fill.qty), OrderStatus.filled)
        self._seq += 1
        insort(self._bids if side is Side.buy else self._asks, (price, self._seq, client_id))
        return o

    def place_market(self, side: Side, qty: Decimal, client_id: int) -> Order:
        """Fill at once at the last price, taker fee; rejected without enough balance."""
        side = Side(side)
        self._check(side, None, qty, client_id)
        if self.last_price is None:
            raise OrderRejected("no last price yet: the market has not traded")
        m, price = self.market, self.last_price
        need = (m.quote, price * qty) if side is Side.buy else (m.base, qty)
        if self._avail.get(need[0], Decimal(0)) < need[1]:
            raise OrderRejected(f"insufficient {need[0]}: market {side.value} {qty} needs {need[1]}, "
                                f"available {self._avail.get(need[0], Decimal(0))}")
        o = Order(client_id=client_id, symbol=m.symbol, side=side, price=price, qty=qty,
                  exchange_id=self._next_order_id())
        self._orders[client_id] = o
        self._execute(o, price, qty, maker=False, locked=False)
        return self._close(replace(o, filled_qty=qty), OrderStatus.filled)

    def cancel(self, client_id: int) -> Order:
        o = self._orders.get(client_id)
        if o is None or o.status is not OrderStatus.open:
            raise OrderRejected(f"order {client_id} is unknown or already closed")
        book = self._bids if o.side is Side.buy else self._asks
        for i, (_, _, cid) in enumerate(book):
            if cid == client_id:
                del book[i]
                break
        rest = o.qty - o.filled_qty
        m = self.market
        asset, amount = (m.quote, o.price * rest) if o.side is Side.buy else (m.base, rest)
        self._locked[asset] -= amount
        self._avail[asset] += amount
        return self._close(o, OrderStatus.cancelled)

    def transfer(self, asset: str, amount: Decimal) -> None:
        """Deposit (amount > 0) or withdraw (< 0) available coins behind the bots' backs: the user's
        own hand on a shared account, for tests and the fake server's side door."""
        have = self._avail.get(asset, Decimal(0))
        if have + amount < 0:
            raise OrderRejected(f"insufficient {asset}: cannot withdraw {-amount}, available {have}")
        self._avail[asset] = have + amount
        self._locked.setdefault(asset, Decimal(0))

    def get_order(self, client_id: int) -> Optional[Order]:
        return self._orders.get(client_id)

    def open_orders(self) -> list[Order]:
        return [self._orders[cid] for _, _, cid in self._bids + self._asks]

    def set_price(self, price: Decimal) -> list[Fill]:
        """Move the last price; fill resting orders it reaches at their own price, nearest first."""
        self.last_price = price
        fills: list[Fill] = []
        cap = self.liquidity_per_tick
        bids, asks = self._bids, self._asks
        if bids and price <= bids[-1][0]:
            self._match(bids, reversed(list(bids)), lambda p: price <= p, cap, fills)
        if asks and price >= asks[0][0]:
            self._match(asks, list(asks), lambda p: price >= p, cap, fills)
        return fills

    def _match(self, book: list, entries: Any, hit: Callable[[Decimal], bool], cap: Optional[Decimal],
               fills: list[Fill]) -> None:
        for entry in entries:
            px, _, cid = entry
            if not hit(px):
                break
            o = self._orders[cid]
            qty = o.qty - o.filled_qty
            if cap is not None and cap < qty:
                qty = cap
            fills.append(self._execute(o, px, qty, maker=True, locked=True))
            o = replace(o, filled_qty=o.filled_qty + qty)
            if o.filled_qty >= o.qty:
                book.remove(entry)
                self._close(o, OrderStatus.filled)
            else:
                self._orders[cid] = o

    def fills_since(self, ms: int) -> list[Fill]:
        """Fills with timestamp >= ms (inclusive: callers dedup by trade_id)."""
        keys = [f.timestamp_ms for f in self._fills]
        return self._fills[bisect_left(keys, ms):]

    def balances(self) -> dict[str, Balance]:
        return {a: Balance(a, self._avail[a], self._locked.get(a, Decimal(0))) for a in self._avail}

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The venue as a versioned snapshot with named fields (``_paper_snapshot``)."""
        return _paper_snapshot.dump(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], clock: Callable[[], int] = _wall_ms) -> "PaperVenue":
        """A venue from ``to_dict``'s snapshot (or a v1 one); SnapshotError for an unknown version."""
        return _paper_snapshot.load(cls, d, clock)
