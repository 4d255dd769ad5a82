"""Sending orders and reading fills: every intent goes to the venue here, and every answer back.

``execute`` sends the intents ``apply`` has already written (so a send is never the first record of an
order), reads each answer (a placement closed at once is a rejection; a market order that ended
short is settled) and feeds it back to the strategy. ``poll_fills`` reads the venue's fills from a
few seconds before the last one booked and hands the new ones to ``apply``. An order found on the
venue by our client id counts as ours only if it is the order our row recorded (``_same_order``).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Optional

from .. import strategy as st
from ..errors import AuthError, ExchangeError, OrderRejected
from ..exchange.base import Order, OrderStatus
from ..store import CANCELLED, FILLED, OPEN, REJECTED, OrderRow
from .base import BotBase

log = logging.getLogger("gridbot")

FILL_OVERLAP_MS = 5000  # re-read fills this far back: duplicates are dropped by trade_id
START_SLACK_MS = 5000  # read fills from a little before the state began: the venue's clock may lag ours
KNOWN_TRADES = 4096  # trade ids remembered to skip re-read fills before they reach the store

# the store's row status for an order the venue reports
ROW_STATUS = {OrderStatus.open: OPEN, OrderStatus.filled: FILLED, OrderStatus.cancelled: CANCELLED,
              OrderStatus.rejected: REJECTED}


def now_ms() -> int:
    return int(time.time() * 1000)


class OrdersMixin(BotBase):
    """The venue calls for orders and fills. Uses ``apply`` (persist), ``_halt_on_auth`` and
    ``_exchange_failed`` (failures); sets ``need_reconcile`` when a send could not finish."""

    async def execute(self, intents: list[st.Intent]) -> None:
        """Send intents to the venue in order; every answer goes back to the strategy.

        A placement the venue closed at once (Backpack's 200 ``Expired`` for a post-only order that
        would have taken) is a rejection: the level is held and retried after a backoff. A market
        order that ended without filling completely is a cancellation once its fills are booked (a
        rebalance then places what the base allows). An authentication failure halts trading; any
        other failure to reach the venue stops the queue: the intents left are rows marked pending in
        the store, which the next reconcile sends (same client ids, so never twice)."""
        queue = deque(intents)
        while queue:
            it = queue.popleft()
            self._progress = time.monotonic()
            try:
                if isinstance(it, st.Place):
                    o = await self.ex.place_limit(self.symbol, it.side, it.price, it.qty, it.client_id, True)
                    if o.status is OrderStatus.open:
                        self.store.set_status(it.client_id, OPEN, order_id=o.exchange_id)
                        log.debug("placed %s %s %s @ %s (gap %d)", it.client_id, it.side.value, it.qty, it.price,
                                  it.gap)
                    elif o.status is OrderStatus.filled:  # a limit that took at once (post_only off)
                        self.store.set_status(it.client_id, OPEN, order_id=o.exchange_id)
                        queue.extend(await self.poll_fills())
                    else:
                        reason = o.reason or o.status.value
                        log.info("order %s (%s %s @ %s) closed by the venue at once: %s; the level is retried "
                                 "later", it.client_id, it.side.value, it.qty, it.price, reason)
                        self.store.set_status(it.client_id, REJECTED, o.filled_qty, note=reason[:200],
                                              order_id=o.exchange_id)
                        queue.extend(self.apply([st.Rejected(it.client_id, reason)]))
                elif isinstance(it, st.Market):
                    o = await self.ex.place_market(self.symbol, it.side, it.qty, it.client_id)
                    done = o.status is not OrderStatus.open and o.status is not OrderStatus.filled
                    self.store.set_status(it.client_id, CANCELLED if done else OPEN, order_id=o.exchange_id)
                    log.info("market %s %s %s (%s)", it.side.value, it.qty, self.state and self.state.p.base,
                             it.reason)
                    queue.extend(await self.poll_fills())  # what did fill is booked first
                    if done:
                        queue.extend(self._market_ended(it.client_id, o))
                else:
                    await self.ex.cancel(self.symbol, it.client_id)
                    queue.extend(await self.poll_fills())  # fills before the cancel count first
                    self.store.set_status(it.client_id, CANCELLED)
                    queue.extend(self.apply([st.Cancelled(it.client_id)]))
            except OrderRejected as exc:
                if isinstance(it, st.Cancel):
                    queue.extend(await self._settle(it.client_id))
                    continue
                o = await self.ex.get_order(self.symbol, it.client_id)
                row = self.store.order(it.client_id)
                if (o is not None and row is not None and self._same_order(row, o)
                        and o.status in (OrderStatus.open, OrderStatus.filled)):
                    # a retry of a call that got through the first time
                    log.info("order %s already on the venue; adopted", it.client_id)
                    self.store.set_status(it.client_id, ROW_STATUS[o.status], order_id=o.exchange_id)
                    queue.extend(await self.poll_fills())
                    continue
                log.warning("order %s rejected: %s", it.client_id, exc)
                self.store.set_status(it.client_id, REJECTED, note=str(exc)[:200])
                queue.extend(self.apply([st.Rejected(it.client_id, str(exc))]))
            except AuthError as exc:
                self._halt_on_auth(exc)
                self.need_reconcile = True
                return
            except ExchangeError as exc:
                self._exchange_failed(exc, f"{type(it).__name__} {it.client_id}")
                if queue:
                    log.info("%d more orders wait for the next reconcile", len(queue))
                self.need_reconcile = True
                return

    def _market_ended(self, cid: int, o: Order) -> list[st.Intent]:
        """A market order closed without (completely) filling: Expired for lack of liquidity, or refused."""
        assert self.state is not None
        if cid not in self.state.markets:
            return []  # its fills completed it after all
        log.warning("market order %s ended %s with %s of %s filled (%s)", cid, o.status.value, o.filled_qty, o.qty,
                    o.reason or "no reason given")
        self.store.set_status(cid, CANCELLED, note=(o.reason or o.status.value)[:200])
        return self.apply([st.Cancelled(cid)])

    def _same_order(self, row: OrderRow, o: Order) -> bool:
        """Is venue order ``o`` (found by our client id) the one this row recorded, not another state's
        order reusing the id? By the venue's order id once known; before that by what we asked for."""
        if not row.owns(o.symbol, o.exchange_id):
            return False
        if row.order_id and o.exchange_id:
            return True
        return (o.side.value == row.side and o.qty == row.qty
                and (row.price is None or o.price == row.price))

    async def _our_open_orders(self, symbol: str) -> list[Order]:
        """The venue's open orders on ``symbol`` that are ours: an order that only shares one of our
        client ids (another state's, the user's) is not."""
        return [o for o in await self.ex.open_orders(symbol)
                if (row := self.store.order(o.client_id)) is not None and self._same_order(row, o)]

    async def _ours(self, cid: int) -> Optional[Order]:
        """The venue's view of our order ``cid``, or None if the venue has none that is ours."""
        row = self.store.order(cid)
        o = await self.ex.get_order(self.symbol, cid)
        return o if o is not None and row is not None and self._same_order(row, o) else None

    async def _settle(self, cid: int) -> list[st.Intent]:
        """An order we meant to cancel is already closed: learn how it ended."""
        out = await self.poll_fills()
        o = await self._ours(cid)
        if o is not None and o.status in (OrderStatus.cancelled, OrderStatus.rejected):
            self.store.set_status(cid, CANCELLED)
            out += self.apply([st.Cancelled(cid)])
        return out

    def fills_from(self) -> int:
        """Where reading fills starts: this state's beginning, never the account's whole history."""
        return max(0, int(self.store.get("started_ms") or 0) - START_SLACK_MS)

    async def poll_fills(self, lookback_ms: Optional[int] = None) -> list[st.Intent]:
        """New fills of ours since the last one we booked (a few seconds' overlap); ``lookback_ms``
        reads further back instead, for fills the venue shows late."""
        since = max(self.fills_from(), self.store.last_fill_ms() - FILL_OVERLAP_MS if lookback_ms is None
                    else now_ms() - lookback_ms)
        new = [f for f in await self.ex.fills_since(self.symbol, since) if (f.symbol, f.trade_id) not in self._known]
        if not new:
            return []
        for f in new:
            self._known.add((f.symbol, f.trade_id))
            self._known_order.append((f.symbol, f.trade_id))
        while len(self._known_order) > KNOWN_TRADES:
            self._known.discard(self._known_order.popleft())
        return self.apply([], new)
