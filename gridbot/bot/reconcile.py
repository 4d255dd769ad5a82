"""Reconciliation: make the store and the strategy agree with the venue.

Run at start, after an exchange error and every ``reconcile_interval_s`` (default 30 s): pending rows
(intents written but maybe never sent) are sent or adopted, orders cancelled or filled behind the
bot's back are told to the strategy, an hour of fills is re-read for fills the venue shows late,
a market order that ended is settled, and the market's rules (price band, book state) are re-read.
After each periodic reconcile the loop refills idle levels (``LoopMixin._refill``, with backoff).
Only orders this instance recorded are adopted or touched, and only if the venue's order is the one
we placed (``OrdersMixin._same_order``).
"""
from __future__ import annotations

import logging
import time
from decimal import Decimal

from .. import strategy as st
from ..errors import AuthError, ExchangeError, OrderRejected
from ..exchange.base import Order, OrderStatus, Side
from ..health import failure_kind
from ..store import CANCELLED, FILLED, OPEN, PENDING
from .base import BotBase

log = logging.getLogger("gridbot")

LIMIT_STATES = ("Open", "PostOnly", "LimitOnly")  # Backpack orderBookState values that take limit orders
RECONCILE_LOOKBACK_MS = 3_600_000  # reconcile re-reads an hour of fills: late fills (shown after the poll's
#                                    5 s overlap) are caught; duplicates are dropped by trade id


class ReconcileMixin(BotBase):
    """``reconcile`` and the market rules. Uses ``apply`` (persist) and ``execute``, ``poll_fills``,
    ``_ours``, ``_our_open_orders``, ``_market_ended`` (orders)."""

    async def refresh_rules(self) -> list[st.Intent]:
        """Read the market's rules (the adapter caches them 5 min) and tell the strategy when they change:
        levels outside the price band, and every order while the book refuses them, wait."""
        m = await self.ex.market(self.symbol)
        rules = st.Rules(m.price_band, m.state in LIMIT_STATES, m.state == "Open")
        if rules == self._rules:
            return []
        if self._rules is not None or rules != st.Rules():
            band = f"{m.price_band[0]}..{m.price_band[1]} x the last price" if m.price_band else "none"
            log.log(logging.INFO if m.state == "Open" else logging.WARNING,
                    "market %s: order book %s (%s), price band %s", self.symbol, m.state,
                    "limit and market orders" if rules.markets else "limit orders only" if rules.limits
                    else "no new orders", band)
        self._rules = rules
        return self.apply([rules])

    async def reconcile(self) -> None:
        """Compare with the venue (at start, after an error, and every ``reconcile_interval_s``);
        a failure is a health condition and is raised on."""
        try:
            await self._reconcile()
        except ExchangeError as exc:
            self.need_reconcile = True
            if not isinstance(exc, AuthError):
                self.health.set("reconcile", f"reconcile failing ({failure_kind(exc)})", time.monotonic())
            raise
        self.health.set("reconcile", None, time.monotonic())
        self._reconciled_at = time.monotonic()

    async def _reconcile(self) -> None:
        """Make the store and strategy agree with the venue after a restart or an exchange error, and
        on a cadence: orders cancelled behind the bot's back are placed again, orders filled behind
        its back and fills the venue showed late are booked, a market order that ended is settled.
        Only orders this instance recorded are adopted, and only if the venue's order is the one we
        placed (its order id, or side/qty/price before we heard the id); nothing else is touched."""
        assert self.state is not None
        pending_rows = self.store.orders(PENDING)  # before the rules and fills: those may add fresh intents
        todo = await self.refresh_rules()
        todo += await self.poll_fills(RECONCILE_LOOKBACK_MS)  # fills made while we were down, or shown late
        for row in pending_rows:
            o = await self._ours(row.client_id)
            if o is None:  # the call never reached the venue: send it now, same client id
                log.info("order %s was not placed before the restart; placing it now", row.client_id)
                if row.kind == "market":
                    todo.append(st.Market(row.client_id, st.Side(row.side), row.qty, "retry"))
                else:
                    todo.append(st.Place(row.client_id, st.Side(row.side), row.price, row.qty,  # type: ignore[arg-type]
                                         row.gap if row.gap is not None else -1))
            elif o.status is OrderStatus.open:
                log.info("order %s reached the venue before the restart; adopted", row.client_id)
                self.store.set_status(row.client_id, OPEN, order_id=o.exchange_id)
            elif o.status is OrderStatus.filled:
                log.info("order %s filled while we were down; adopted", row.client_id)
                self.store.set_status(row.client_id, FILLED, o.filled_qty, order_id=o.exchange_id)
            else:
                self.store.set_status(row.client_id, CANCELLED, order_id=o.exchange_id)
                todo += self.apply([st.Cancelled(row.client_id)])
        await self.execute(todo)
        pending = {r.client_id for r in self.store.orders(PENDING)}
        open_ids = {o.client_id for o in await self._our_open_orders(self.symbol)}
        for cid in sorted(set(self.state.by_cid) - open_ids - pending):
            o = await self._ours(cid)
            if o is None or o.status in (OrderStatus.cancelled, OrderStatus.rejected):
                log.warning("order %s is no longer on the venue; the strategy is told", cid)
                self.store.set_status(cid, CANCELLED)
                await self.execute(self.apply([st.Cancelled(cid)]))
            elif o.status is OrderStatus.filled:
                await self.execute(await self.poll_fills())
        for cid in sorted(set(self.state.markets) - pending):  # a market order is settled, never left hanging
            o = await self._ours(cid)
            if o is None or o.status in (OrderStatus.cancelled, OrderStatus.rejected):
                await self.execute(await self.poll_fills())
                if o is None:
                    o = Order(cid, self.symbol, Side.buy, Decimal(0), getattr(self.state.markets.get(cid), "qty", 0),
                              status=OrderStatus.cancelled, reason="unknown to the venue")
                await self.execute(self._market_ended(cid, o))
            elif o.status is OrderStatus.filled:
                log.info("market order %s filled; waiting for the venue to show its fills", cid)
        known = sorted(open_ids - set(self.state.by_cid) - set(self.state.markets))
        if known:
            log.warning("orders %s are open on the venue but no longer part of the grid; cancelling", known)
            for c in known:
                try:
                    await self.ex.cancel(self.symbol, c)
                    self.store.set_status(c, CANCELLED)
                except OrderRejected:
                    pass
        if self.state.phase == st.STOPPED and self.state.by_cid:
            await self.execute([st.Cancel(c) for c in sorted(self.state.by_cid)])
        self.need_reconcile = False
