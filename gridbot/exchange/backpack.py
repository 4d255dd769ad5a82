"""Backpack Exchange adapter: the ``base.Exchange`` Protocol over Backpack's REST API.

Transport is httpx (async), in ``_backpack_http`` (throttle, retries, clock); signing is ``_sign``
(ED25519); the wire format and the error seam are ``_backpack_wire``. Events are REST-polled:
``wait_event`` sleeps ``backpack.poll_interval_s`` (no WebSocket yet), after which the runner
asks ``fills_since`` and ``last_price``.

Reliability rules, all enforced here:

* Every error leaves through ``_map_errors()``: httpx timeouts and transport errors, HTTP statuses
  and Backpack ``{"code","message"}`` bodies become ``ExchangeError`` or, for refused orders,
  ``OrderRejected``, with a one-line message naming the operation.
* Rate limits (2000 requests/min per *subaccount*, shared by every instance on it): a per-process
  throttle (``min_interval_s`` between requests), and on HTTP 429 a process-wide cool-down of
  ``Retry-After`` seconds, or exponential backoff with jitter when the header is absent.
  Retries are bounded (``max_retries``).
* Placing is never repeated blindly. After a timeout, a dropped connection or a 5xx the outcome is
  unknown, so the adapter first waits until the original request's signature window has expired
  (Backpack then refuses a late copy of it), looks the order up by ``clientId`` (open orders, then
  order history) and re-sends only if the venue has never seen it.
* Every placement answer is understood: a 200 whose status is terminal (``Expired`` for a
  post-only order that would have taken, a market order without liquidity, …) comes back as a
  closed ``Order`` (``cancelled``, or ``filled`` for what filled) with the venue's reason, never
  as if it were resting.
* Authentication failures (401, ``UNAUTHORIZED``, ``INVALID_SIGNATURE``, ``FORBIDDEN``) raise
  ``AuthError``, never ``OrderRejected``. The server clock is re-read every ``clock_resync_s``
  and at once when Backpack says a request has expired; that request is then sent once more.
* History look-ups say ``sortDirection=Desc`` (Backpack documents no default order); fill
  look-ups say ``fillType=User`` (system fills, whose ``tradeId`` may be null, are not ours).
* Keys, signatures and headers are never logged or put in messages.
"""
from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any, Awaitable, Callable, Optional

import httpx

from ..errors import CredentialsError, ExchangeError, OrderRejected
from ..models import BackpackConfig
from ..records import Balance, Fill, Market, Order, OrderStatus, Side
from . import _sign
from ._backpack_http import _Transport
from ._backpack_wire import (  # noqa: F401  (parse_* and _retry_after_s re-exported for callers and tests)
    _SIDE_OUT, _NotFound, _dec, _map_errors, _retry_after_s, parse_fill, parse_market, parse_order,
)

log = logging.getLogger("gridbot.backpack")
# httpx logs every request at INFO: a line per poll per bot would flood the journal. Retries and
# failures are logged here instead. Left alone if someone configured the httpx logger already.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)

U32_MAX = 2**32 - 1
HISTORY_LOOKUP_LIMIT = 1000  # recent orders searched for a clientId that is no longer open (API max)
FILLS_PAGE = 1000
FILLS_MAX_PAGES = 50
CLOCK_RESYNC_S = 600.0  # re-read Backpack's clock this often (and on every "request has expired")
MARKETS_TTL_S = 300.0  # price bands and order-book states change: re-read the markets this often

class BackpackExchange(_Transport):
    """Live Backpack venue. Construct, use, then ``await close()``; construction does no I/O."""

    taker_fee = Decimal("0.001")  # planning figure for rebalances (the account's tier is not read)
    rate_limited = True

    def __init__(self, bp: BackpackConfig, symbol: str, api_key: str, api_secret: str, *,
                 transport: Optional[httpx.AsyncBaseTransport] = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 timeout_s: float = 10.0,
                 max_retries: int = 5,
                 min_interval_s: float = 0.05,
                 backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0,
                 sync_clock: bool = True,
                 clock_resync_s: float = CLOCK_RESYNC_S,
                 markets_ttl_s: float = MARKETS_TTL_S) -> None:
        self._bp = bp
        self._symbol = symbol
        self._private = _sign.load_private_key(api_secret)
        if api_key.strip() != _sign.public_key_b64(self._private):
            raise CredentialsError("Backpack API key does not belong to the API secret "
                                   "(the key must be the base64 public key of the secret)")
        self._api_key = api_key.strip()
        self._clock, self._sleep, self._mono = clock, sleep, monotonic
        self._max_retries = max_retries
        self._min_interval = min_interval_s
        self._backoff_base, self._backoff_max = backoff_base_s, backoff_max_s
        self._next_slot = 0.0
        self._cooldown_until = 0.0
        self._slot_lock = asyncio.Lock()
        self._markets: dict[str, Market] = {}
        self._markets_at = float("-inf")
        self._markets_ttl = markets_ttl_s
        self._offset_ms = 0  # server clock - local clock, learned from /api/v1/time
        self._sync = sync_clock
        self._synced_at = float("-inf")  # monotonic time of the last clock reading
        self._resync_s = clock_resync_s
        self._client = httpx.AsyncClient(base_url=self._bp.base_url.rstrip("/"), transport=transport,
                                         timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                                         headers={"User-Agent": "gridbot", "Accept": "application/json"})

    def __repr__(self) -> str:  # never show keys
        return f"BackpackExchange({self._bp.base_url!r}, account={self._bp.account!r})"

    # --- lookups -------------------------------------------------------------------------------

    async def _find_order(self, symbol: str, client_id: int) -> Optional[dict[str, Any]]:
        """The raw order with this clientId: open first, then recent history; None if never seen."""
        try:
            with _map_errors(f"look up order {client_id}"):
                data = await self._call("GET", "/api/v1/order", {"symbol": symbol, "clientId": client_id})
        except _NotFound:
            data = None
        if isinstance(data, dict) and data:
            return data
        with _map_errors(f"look up order {client_id} in history"):
            rows = await self._call("GET", "/wapi/v1/history/orders",
                                    {"symbol": symbol, "limit": HISTORY_LOOKUP_LIMIT, "sortDirection": "Desc"})
        for row in rows or []:  # newest first: a reused clientId finds its latest order
            if str(row.get("clientId")) == str(client_id) and row.get("symbol", symbol) == symbol:
                return row
        return None

    # --- Exchange Protocol ---------------------------------------------------------------------

    async def market(self, symbol: str) -> Market:
        """The market's rules, re-read every ``markets_ttl_s`` (bands and book state change)."""
        if symbol not in self._markets or self._mono() - self._markets_at >= self._markets_ttl:
            with _map_errors("load markets"):
                rows = await self._call("GET", "/api/v1/markets", signed=False)
                self._markets_at = self._mono()
                for row in rows:
                    try:
                        m = parse_market(row)
                    except (KeyError, TypeError, ValueError, ArithmeticError):
                        if row.get("symbol") == symbol:
                            raise
                        continue  # some other market we do not trade
                    self._markets[m.symbol] = m
            if symbol not in self._markets:
                raise ExchangeError(f"market {symbol} is not listed on Backpack ({self._bp.base_url})")
        return self._markets[symbol]

    async def last_price(self, symbol: str) -> Decimal:
        with _map_errors(f"ticker {symbol}"):
            data = await self._call("GET", "/api/v1/ticker", {"symbol": symbol}, signed=False)
            return _dec(data["lastPrice"])

    async def _check(self, symbol: str, price: Optional[Decimal], qty: Decimal, client_id: int) -> None:
        m = await self.market(symbol)
        if not 0 <= client_id <= U32_MAX:
            raise OrderRejected(f"clientId {client_id} is not a u32")
        if qty < m.min_qty or qty % m.step_size:
            raise OrderRejected(f"{symbol}: quantity {qty} must be a multiple of {m.step_size} and at least {m.min_qty}")
        if price is not None and (price <= 0 or price % m.tick_size):
            raise OrderRejected(f"{symbol}: price {price} must be a positive multiple of {m.tick_size}")

    async def _place(self, what: str, symbol: str, body: dict[str, Any], client_id: int) -> Order:
        """POST the order; the answer's status is the truth, including a terminal one.

        Backpack answers 200 for orders it closed at once: a post-only order that would have
        taken is ``Expired`` (expiry reason ``PostOnlyTaker``), so is a market order that found
        no liquidity (with what it did fill). Those come back as a closed ``Order`` (status
        ``cancelled``, ``filled_qty`` what filled, ``reason`` the venue's word), never as open.
        """
        with _map_errors(what, order=True):
            data = await self._call("POST", "/api/v1/order", body,
                                    lookup=lambda: self._find_order(symbol, client_id))
            order = parse_order(data)
        if order.status is not OrderStatus.open and order.status is not OrderStatus.filled:
            log.info("%s: Backpack closed it at once (%s, filled %s)", what, order.reason or order.status.value,
                     order.filled_qty)
        return order

    async def place_limit(self, symbol: str, side: Side, price: Decimal, qty: Decimal,
                          client_id: int, post_only: bool = True) -> Order:
        await self._check(symbol, price, qty, client_id)
        body = {"symbol": symbol, "side": _SIDE_OUT[side], "orderType": "Limit",
                "price": _sign.format_decimal(price), "quantity": _sign.format_decimal(qty),
                "timeInForce": "GTC", "postOnly": bool(post_only and self._bp.post_only),
                "clientId": client_id}
        return await self._place(f"place {side.value} {qty} {symbol} @ {price} (clientId {client_id})",
                                 symbol, body, client_id)

    async def place_market(self, symbol: str, side: Side, qty: Decimal, client_id: int) -> Order:
        await self._check(symbol, None, qty, client_id)
        body = {"symbol": symbol, "side": _SIDE_OUT[side], "orderType": "Market",
                "quantity": _sign.format_decimal(qty), "clientId": client_id}
        return await self._place(f"market {side.value} {qty} {symbol} (clientId {client_id})",
                                 symbol, body, client_id)

    async def cancel(self, symbol: str, client_id: int) -> None:
        what = f"cancel order {client_id} on {symbol}"
        try:
            with _map_errors(what, order=True):
                await self._call("DELETE", "/api/v1/order", {"symbol": symbol, "clientId": client_id})
            return
        except _NotFound:
            pass
        # Not open: fine if it already ended (a retried cancel, or it filled meanwhile).
        row = await self._find_order(symbol, client_id)
        if row is None:
            raise OrderRejected(f"{what}: Backpack knows no order with this clientId")
        with _map_errors(what):
            if parse_order(row).status is OrderStatus.open:
                raise ExchangeError(f"{what}: order is still open but cancel said it was not found")

    async def get_order(self, symbol: str, client_id: int) -> Optional[Order]:
        row = await self._find_order(symbol, client_id)
        if row is None:
            return None
        with _map_errors(f"order {client_id}"):
            return parse_order(row)

    async def open_orders(self, symbol: str) -> list[Order]:
        with _map_errors(f"open orders {symbol}"):
            rows = await self._call("GET", "/api/v1/orders", {"symbol": symbol})
            return [parse_order(r) for r in rows or []]

    async def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        fills: dict[str, Fill] = {}
        with _map_errors(f"fills {symbol}"):
            for page in range(FILLS_MAX_PAGES):
                # Desc: offset pages then only overlap (fills arriving meanwhile push rows to later
                # pages; duplicates are dropped by trade id), they never skip one.
                rows = await self._call("GET", "/wapi/v1/history/fills",
                                        {"symbol": symbol, "from": int(since_ms), "limit": FILLS_PAGE,
                                         "offset": page * FILLS_PAGE, "fillType": "User",
                                         "sortDirection": "Desc"})
                for row in rows or []:
                    f = parse_fill(row)
                    if f.timestamp_ms >= since_ms and f.symbol == symbol:
                        fills[f.trade_id] = f
                if len(rows or []) < FILLS_PAGE:
                    break
            else:
                log.warning("fills %s: stopped after %d pages; older fills than these were not read",
                            symbol, FILLS_MAX_PAGES)
        return sorted(fills.values(), key=lambda f: (f.timestamp_ms, f.trade_id))

    async def balances(self) -> dict[str, Balance]:
        with _map_errors("balances"):
            data = await self._call("GET", "/api/v1/capital")
            return {asset: Balance(asset, _dec(v.get("available")), _dec(v.get("locked")))
                    for asset, v in (data or {}).items()}

    async def wait_event(self, timeout: float) -> None:
        """REST polling: sleep ``poll_interval_s`` (or ``timeout`` if shorter)."""
        await self._sleep(max(0.0, min(timeout, self._bp.poll_interval_s)))

    async def close(self) -> None:
        await self._client.aclose()
