"""Backpack Exchange adapter: the ``base.Exchange`` Protocol over Backpack's REST API.

Transport is httpx (async); signing is ``_sign`` (ED25519). Events are REST-polled:
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
import json
import logging
import random
import time
from decimal import Decimal
from typing import Any, Awaitable, Callable, Optional

import httpx

from ..errors import CredentialsError, ExchangeError, OrderRejected
from ..models import BackpackConfig
from ..records import Balance, Fill, Market, Order, OrderStatus, Side
from . import _sign
from ._backpack_wire import (  # noqa: F401  (parse_* and _retry_after_s re-exported for callers and tests)
    _SIDE_OUT, _HTTPFailure, _NotFound, _dec, _failure_from, _is_expired, _map_errors, _retry_after_s,
    parse_fill, parse_market, parse_order,
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

class BackpackExchange:
    """Live Backpack venue. Construct, use, then ``await close()``; construction does no I/O."""

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

    # --- transport -----------------------------------------------------------------------------

    async def _throttle(self) -> None:
        async with self._slot_lock:
            now = self._mono()
            start = max(now, self._next_slot, self._cooldown_until)
            self._next_slot = start + self._min_interval
        if start > now:
            await self._sleep(start - now)

    def _backoff(self, attempt: int) -> float:
        cap = min(self._backoff_max, self._backoff_base * (2 ** attempt))
        return cap * (0.5 + random.random() / 2)

    async def _send(self, method: str, path: str, params: Optional[dict[str, Any]],
                    signed: bool, ts: int) -> httpx.Response:
        """One HTTP exchange, signed at ``ts`` (ms)."""
        headers: dict[str, str] = {}
        query = content = None
        if method in ("GET",) and params:
            query = {k: _sign.format_value(v) for k, v in params.items() if v is not None}
        elif params is not None and method != "GET":
            content = json.dumps(params, separators=(",", ":"))
            headers["Content-Type"] = "application/json; charset=utf-8"
        if signed:
            instruction = _sign.instruction_for(method, path)
            if instruction is None:
                raise ValueError(f"no signing instruction for {method} {path}")
            headers.update(_sign.signed_headers(self._api_key, self._private, instruction,
                                                params, ts, self._bp.window_ms))
        return await self._client.request(method, path, params=query, content=content, headers=headers)

    async def _call(self, method: str, path: str, params: Optional[dict[str, Any]] = None, *,
                    signed: bool = True,
                    lookup: Optional[Callable[[], Awaitable[Any]]] = None) -> Any:
        """Send with bounded retries; return the decoded JSON body (None when empty).

        429 waits and re-sends (the request was not processed). Timeouts, transport errors and
        5xx are outcome-unknown: without ``lookup`` (idempotent requests) the request is re-sent;
        with ``lookup`` the adapter waits out the signature window, calls it, and returns its
        result instead of re-sending when it is not None.
        """
        attempt = 0
        resynced = False
        while True:
            if signed and self._sync and self._mono() - self._synced_at >= self._resync_s:
                await self._sync_clock()
            await self._throttle()  # before signing: a long cool-down must not age the signature
            ts = self._now_ms()
            try:
                resp = await self._send(method, path, params, signed, ts)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt >= self._max_retries:
                    raise
                # debug: during an outage the runner logs one line per kind of failure, not one per attempt
                log.debug("%s %s: %s (attempt %d); retrying", method, path, type(exc).__name__, attempt + 1)
                delay = self._backoff(attempt)
            else:
                if resp.status_code < 400:
                    if not resp.content.strip():
                        return None
                    return resp.json()
                failure = _failure_from(resp)
                if signed and self._sync and not resynced and _is_expired(failure):
                    # not processed: re-read the clock and send it once more, newly signed
                    resynced = True
                    log.warning("%s %s: Backpack says the request expired; re-reading its clock", method, path)
                    await self._sync_clock()
                    continue
                if attempt >= self._max_retries or not (resp.status_code == 429 or resp.status_code >= 500):
                    raise failure
                if resp.status_code == 429:
                    after = _retry_after_s(resp, self._clock())
                    delay = after if after is not None else self._backoff(attempt)
                    delay += random.random() * min(1.0, delay / 10)  # de-synchronise instances
                    self._cooldown_until = max(self._cooldown_until, self._mono() + delay)
                    log.warning("%s %s: rate limited (429); cooling down %.2fs", method, path, delay)
                    attempt += 1
                    continue  # _throttle sleeps out the cool-down
                log.debug("%s %s: HTTP %d %s (attempt %d); retrying", method, path, resp.status_code,
                          failure.code, attempt + 1)
                delay = self._backoff(attempt)
            attempt += 1
            if lookup is not None:
                # A late copy of the original request is refused once its window has passed.
                wait_ms = ts + self._bp.window_ms - self._now_ms()
                await self._sleep(max(delay, wait_ms / 1000))
                found = await lookup()
                if found is not None:
                    log.warning("%s %s: request had been accepted before the failure; not re-sending",
                                method, path)
                    return found
            else:
                await self._sleep(delay)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) + self._offset_ms

    async def _sync_clock(self) -> None:
        """Read the server's clock (public GET /api/v1/time); best effort.

        Called before the first signed request, then every ``clock_resync_s`` and whenever
        Backpack answers that a request has expired. A host clock off by more than the window
        makes every signed request fail, so a skew over half a second is corrected for and logged
        when it changes; the operator should still fix NTP.
        """
        self._synced_at = self._mono()
        try:
            before = self._clock()
            server_ms = int(await self._call("GET", "/api/v1/time", signed=False))
            local_ms = int((before + self._clock()) / 2 * 1000)
        except (_HTTPFailure, ValueError, TypeError) as exc:  # network errors propagate: nothing works then
            log.warning("could not read Backpack's clock (%s); signing with the host clock", exc)
            return
        skew = server_ms - local_ms
        offset = skew if abs(skew) > 500 else 0
        if abs(offset - self._offset_ms) > 500:
            log.warning("host clock is %+d ms off Backpack's; correcting signatures for it (fix NTP)", -skew)
        self._offset_ms = offset

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
