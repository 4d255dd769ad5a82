"""A fake Backpack REST server on 127.0.0.1 for offline tests of the real adapter.

It follows Backpack's documented API, not gridbot's adapter, including where that is
inconvenient. Sources, cited per behaviour: "OpenAPI" is Backpack's OpenAPI document (stored in
api-evangelist/backpack, ``openapi/_original/backpack-exchange-openapi.yml``), "bpx" is Backpack's
own client backpack-exchange/bpx-api-client (``types/src``), "ccxt" is ccxt's
``python/ccxt/backpack.py``. What no reference settles is marked *assumption*.

Authentication (OpenAPI "Authentication" section): API key, ``X-Window`` <= 60000 (default 5000),
ED25519 signature over ``instruction=…&<sorted params>&timestamp=…&window=…``, rebuilt here
independently of ``gridbot.exchange._sign``. A missing header or unknown key answers 401
``UNAUTHORIZED``, a bad signature 401 ``INVALID_SIGNATURE`` (OpenAPI: 401 "Unauthorized" with an
``ApiErrorResponse``; both codes in ``ApiErrorCode``; ccxt maps both to AuthenticationError). A
request past its window answers 400 ``INVALID_CLIENT_REQUEST`` "Request has expired", and one
more than a window in the future is refused the same way (*assumption*: code and message are not
documented).

The account (``_fake_account.Account``, which cites its own sources): several spot markets
(SOL_USDC, SOL_USDT, ETH_USDC by default) on ONE set of balances; a reused ``clientId`` is
accepted; a post-only order that would take answers 200 ``Expired``; a price outside the
market's band answers 400 ``INVALID_PRICE``; system fills have a null ``tradeId``.

Endpoints and their documented shapes:

* ``GET /api/v1/markets``: ``Market`` with ``filters.price.{tickSize,minPrice,maxPrice,
  minMultiplier,maxMultiplier}``, ``filters.quantity``, ``orderBookState`` (OpenAPI ``Market``,
  ``PriceFilter``, ``OrderBookState``; ccxt's recorded SOL_USDC answer has 0.75/1.25).
* ``POST /api/v1/order`` answers ``LimitOrder``/``MarketOrder`` (``createdAt`` int ms, no
  expiry reason: OpenAPI and bpx). ``GET /api/v1/order`` answers open orders only, else 404
  (OpenAPI: "This only returns the order if it is resting on the order book"); one of
  ``orderId``/``clientId``, both is refused (OpenAPI ``get_order``/``cancel_order``).
* ``GET /api/v1/orders`` (symbol optional), ``DELETE /api/v1/orders`` (symbol required: cancels
  that market's open orders; OpenAPI ``OrderCancelAllPayload``).
* ``GET /wapi/v1/history/orders``: ``Order`` rows (``createdAt`` naive date-time,
  ``expiryReason``), filters ``symbol``, ``orderId``; ``limit`` default 100, max 1000 (larger is
  clamped: *assumption*), ``offset``; ``sortDirection`` ``Asc``|``Desc`` (OpenAPI
  ``SortDirection``).
* ``GET /wapi/v1/history/fills``: ``OrderFill`` rows (``tradeId`` int or null, ``clientId`` a
  string, ``orderId``, ``timestamp`` naive UTC, ``systemOrderType``); filters ``symbol``,
  ``orderId``, ``from``/``to`` (ms), ``fillType`` (OpenAPI ``FillType``: without it, system
  fills are included), ``limit``/``offset``, ``sortDirection``.
* Default sort of both histories: ascending (oldest first). OpenAPI documents ``sortDirection``
  but no default; the ascending default is what issue 9 reports from the venue (*assumption*), and
  it is the inconvenient choice for a client that expects the newest first.
* ``GET /api/v1/capital``: ``{asset: {available, locked, staked}}``; ``GET /api/v1/ticker``,
  ``/api/v1/time`` (a bare number), ``/api/v1/ping``.
* Outage: ``503`` bodies are ``{"code": "MAINTENANCE", "message": "System under maintenance"}``
  (OpenAPI ``execute_order`` 503 "System under maintenance").

Side doors (no auth, test use only; Python methods of the same names on ``FakeBackpack``):

    POST   /_fault     {"kind": "429"|"5xx"|"error"|"timeout"|"drop", "count": 1,
                        "path": "/api/v1/order", "method": "POST", "status": 503,
                        "body": {...} or "text", "retry_after": "1", "delay": 2.0, "after": false}
    DELETE /_fault     clear pending faults
    POST   /_price     {"symbol": "SOL_USDC", "price": "149.5"}   -> {"fills": n}
    POST   /_clock     {"offset_ms": -10000}                      skew the server clock
    POST   /_cancel_all {"symbol": "SOL_USDC"} (all markets without) -> {"cancelled": n}
    POST   /_balance   {"asset": "SOL", "delta": "-5"} or {"asset": "SOL", "available": "3"}
    POST   /_system_fill {"symbol": "SOL_USDC", "side": "Ask", "quantity": "0.5"}
    POST   /_hide_fills {"on": true}   fills made from now on are kept out of the history ...
    POST   /_reveal                    ... until revealed, with their original timestamps
    POST   /_down      {"mode": "503"|"refuse", "for_s": 3.0}     every API request fails until up
    POST   /_up
    POST   /_market    {"symbol": "SOL_USDC", "state": "PostOnly", "min_mult": "0.8", "liquidity": "1"}
    GET    /_state     account snapshot; GET /_log: every request seen (no headers)

``after: true`` on a fault processes the request first and then fails (default for timeout and
drop): "accepted, but the client never heard". ``/_down`` with ``refuse`` closes the listening
socket (connections are refused, side doors too), so from outside give ``for_s``.

Standalone: ``python tests/gridbot_testsupport/fake_backpack.py --port P --api-key PUB [--state FILE]``. FILE is
rewritten after every change with ``{"account": …, "summary": …}``; a restarted fake continues
from it. A hand-written FILE without "account" gives the start:
``{"price": "150", "prices": {"ETH_USDC": "3000"}, "balances": {"SOL": "10"}}`` ("price" is the
first market's).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

if __package__:  # imported as gridbot_testsupport.fake_backpack
    from ._fake_account import ASK, BID, Account, MarketSpec, VenueError, VFill, VOrder
else:  # run by path (python tests/gridbot_testsupport/fake_backpack.py): its own folder is on the import path
    from _fake_account import ASK, BID, Account, MarketSpec, VenueError, VFill, VOrder

_INSTRUCTIONS = {
    ("GET", "/api/v1/order"): "orderQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
}
_PUBLIC = {("GET", "/api/v1/markets"), ("GET", "/api/v1/ticker"), ("GET", "/api/v1/time"),
           ("GET", "/api/v1/ping")}

D = Decimal
DEFAULT_MARKETS = (MarketSpec("SOL_USDC", "SOL", "USDC"), MarketSpec("SOL_USDT", "SOL", "USDT"),
                   MarketSpec("ETH_USDC", "ETH", "USDC", tick=D("0.01"), step=D("0.0001"), min_qty=D("0.0001")))
DEFAULT_PRICES = {"SOL_USDC": D(150), "SOL_USDT": D(150), "ETH_USDC": D(3000)}
DEFAULT_BALANCES = {"SOL": D(10), "USDC": D(10000), "USDT": D(10000), "ETH": D(1)}
FILL_TYPES = {"User", "BookLiquidation", "Adl", "Backstop", "Liquidation", "AllLiquidation",
              "CollateralConversion", "CollateralConversionAndSpotLiquidation"}  # OpenAPI FillType


def expected_string(instruction: str, params: dict[str, Any], ts: str, window: str) -> str:
    """Backpack's signing string, written from the docs (not shared with the adapter)."""
    def text(v: Any) -> str:
        if v is True:
            return "true"
        if v is False:
            return "false"
        return str(v)
    pairs = [f"{k}={text(params[k])}" for k in sorted(params)]
    return "&".join([f"instruction={instruction}", *pairs, f"timestamp={ts}", f"window={window}"])


class _Reply(Exception):
    def __init__(self, status: int, body: Any, headers: Optional[dict[str, str]] = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def _err(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"code": code, "message": message})


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _s(d: Optional[Decimal]) -> Optional[str]:
    if d is None:
        return None
    return format(d.normalize(), "f") if d else "0"


class FakeBackpack:
    """In-process server. ``with FakeBackpack(pub) as fake: fake.base_url`` …"""

    def __init__(self, api_key: str, *, markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS,
                 prices: Optional[dict[str, Decimal]] = None, balances: Optional[dict[str, Decimal]] = None,
                 maker_fee: Decimal = D("0.0008"), taker_fee: Decimal = D("0.001"),
                 host: str = "127.0.0.1", port: int = 0, state_path: Optional[Path] = None) -> None:
        self.api_key = api_key
        self._pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(api_key))
        self.state_path = state_path
        self.lock = threading.RLock()
        self.faults: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.clock_offset_ms = 0
        self.down: Optional[str] = None  # None, "503" or "refuse"
        saved = json.loads(state_path.read_text()) if state_path is not None and state_path.exists() else {}
        if "account" in saved:  # a snapshot this fake wrote: continue where it stopped
            self.account = Account.from_dict(saved["account"], self.now_ms)
        else:  # fresh, or a hand-written setup
            p = {m.symbol: DEFAULT_PRICES.get(m.symbol, D(100)) for m in markets}
            p.update(prices or {})
            if "price" in saved:
                p[markets[0].symbol] = D(str(saved["price"]))
            p.update({k: D(str(v)) for k, v in saved.get("prices", {}).items()})
            bal = dict(balances if balances is not None else DEFAULT_BALANCES)
            if "balances" in saved:
                bal = {a: D(str(v)) for a, v in saved["balances"].items()}
            self.account = Account({m.symbol: MarketSpec(**vars(m)) for m in markets}, p, bal,
                                   maker_fee=maker_fee, taker_fee=taker_fee, clock=self.now_ms)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._host, self._port = host, port

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]  # the same port again after a "refuse" outage
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-backpack",
                                        daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeBackpack":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- side doors ----------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def add_fault(self, kind: str, count: int = 1, **kw: Any) -> None:
        f = {"kind": kind, "count": count, **kw}
        defaults: dict[str, dict[str, Any]] = {
            "429": {"status": 429, "body": {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}},
            "5xx": {"status": 503, "body": "<html>503 Service Temporarily Unavailable</html>"},
            "error": {"status": 400, "body": {"code": "INVALID_ORDER", "message": "injected"}},
            "timeout": {"after": True, "delay": 2.0},
            "drop": {"after": True},
        }
        if kind not in defaults:
            raise ValueError(f"unknown fault kind {kind!r}")
        for k, v in defaults[kind].items():
            f.setdefault(k, v)
        f.setdefault("after", False)
        with self.lock:
            self.faults.append(f)

    def set_price(self, price: Decimal, symbol: str = "SOL_USDC") -> list[VFill]:
        with self.lock:
            fills = self.account.set_price(symbol, D(price))
            self._save()
            return fills

    def cancel_all(self, symbol: Optional[str] = None) -> int:
        """Cancel open orders behind the bots' backs (web UI, maintenance)."""
        with self.lock:
            gone = [self.account.cancel(o) for o in self.account.open_orders(symbol)]
            self._save()
            return len(gone)

    def move_balance(self, asset: str, delta: Optional[Decimal] = None, available: Optional[Decimal] = None) -> None:
        """The user deposits, withdraws or spends coins on the same account."""
        with self.lock:
            a = self.account.available
            a[asset] = D(available) if available is not None else a.get(asset, D(0)) + D(delta or 0)
            self.account.locked.setdefault(asset, D(0))
            self._save()

    def system_fill(self, symbol: str, side: str, qty: Decimal, price: Optional[Decimal] = None) -> VFill:
        with self.lock:
            f = self.account.system_fill(symbol, side, D(qty), None if price is None else D(price))
            self._save()
            return f

    def hide_fills(self, on: bool = True) -> None:
        with self.lock:
            self.account.hide_fills = on

    def reveal(self) -> int:
        with self.lock:
            self.account.hide_fills = False
            n = self.account.reveal()
            self._save()
            return n

    def go_down(self, mode: str = "503", for_s: Optional[float] = None) -> None:
        """Every API request fails (503 MAINTENANCE, or connection refused) until ``come_up``."""
        if mode not in ("503", "refuse"):
            raise ValueError(f"unknown outage mode {mode!r}")
        self.down = mode
        if mode == "refuse" and self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            threading.Thread(target=lambda: (httpd.shutdown(), httpd.server_close()), daemon=True).start()
            deadline = time.monotonic() + 5  # the port must be closed when this returns
            while time.monotonic() < deadline and httpd.socket.fileno() != -1:
                time.sleep(0.01)
        if for_s is not None:
            threading.Timer(for_s, self.come_up).start()

    def come_up(self) -> None:
        was, self.down = self.down, None
        if was == "refuse" and self._httpd is None:
            self.start()

    def placed(self, client_id: int) -> int:
        """How many orders with this clientId the venue accepted (a reused clientId counts each)."""
        return sum(1 for e in self.log if e.get("accepted") == client_id)

    def open_orders(self, symbol: Optional[str] = None) -> list[VOrder]:
        with self.lock:
            return list(self.account.open_orders(symbol))

    def _take_fault(self, method: str, path: str) -> Optional[dict[str, Any]]:
        with self.lock:
            for f in self.faults:
                if f.get("path", path) == path and f.get("method", method) == method and f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                    return f
        return None

    # --- wire format ---------------------------------------------------------------------------

    @staticmethod
    def _order_json(o: VOrder) -> dict[str, Any]:
        """The placement / open-order answer: OpenAPI ``LimitOrder`` / ``MarketOrder``."""
        d: dict[str, Any] = {
            "orderType": o.order_type, "id": o.id, "clientId": o.client_id, "symbol": o.symbol, "side": o.side,
            "quantity": _s(o.qty), "executedQuantity": _s(o.executed), "executedQuoteQuantity": _s(o.executed_quote),
            "status": o.status, "timeInForce": o.time_in_force, "selfTradePrevention": "RejectTaker",
            "createdAt": o.created_ms,
        }
        if o.order_type == "Limit":
            d.update(price=_s(o.price), postOnly=o.post_only)
        return d

    @staticmethod
    def _history_json(o: VOrder) -> dict[str, Any]:
        """An order-history row: OpenAPI ``Order`` (createdAt is a naive date-time there)."""
        return {"id": o.id, "clientId": o.client_id, "createdAt": _iso(o.created_ms), "orderType": o.order_type,
                "symbol": o.symbol, "side": o.side, "price": _s(o.price), "quantity": _s(o.qty),
                "executedQuantity": _s(o.executed), "executedQuoteQuantity": _s(o.executed_quote),
                "postOnly": o.post_only, "status": o.status, "expiryReason": o.expiry_reason,
                "timeInForce": o.time_in_force, "selfTradePrevention": "RejectTaker"}

    @staticmethod
    def _fill_json(f: VFill) -> dict[str, Any]:
        """OpenAPI ``OrderFill``: ``clientId`` is a string there, ``tradeId`` an optional int."""
        return {"tradeId": f.trade_id, "orderId": f.order_id,
                "clientId": None if f.client_id is None else str(f.client_id), "symbol": f.symbol,
                "side": f.side, "price": _s(f.price), "quantity": _s(f.qty), "fee": _s(f.fee),
                "feeSymbol": f.fee_symbol, "isMaker": f.is_maker, "systemOrderType": f.system_order_type,
                "timestamp": _iso(f.ts_ms)}

    @staticmethod
    def _market_json(m: MarketSpec) -> dict[str, Any]:
        return {"symbol": m.symbol, "baseSymbol": m.base, "quoteSymbol": m.quote, "marketType": "SPOT",
                "orderBookState": m.state, "visible": True, "createdAt": "2025-01-21T06:34:54.691858",
                "filters": {"price": {"tickSize": _s(m.tick), "minPrice": _s(m.tick), "maxPrice": None,
                                      "minMultiplier": _s(m.min_mult), "maxMultiplier": _s(m.max_mult)},
                            "quantity": {"stepSize": _s(m.step), "minQuantity": _s(m.min_qty),
                                         "maxQuantity": None}}}

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        with self.lock:
            data = {"account": self.account.to_dict(), "summary": self.snapshot()}
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_path)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            a = self.account
            first = next(iter(a.markets))
            return {
                "price": _s(a.prices[first]), "prices": {k: _s(v) for k, v in a.prices.items()},
                "balances": {k: {"available": _s(a.available[k]), "locked": _s(a.locked.get(k, D(0)))}
                             for k in a.available},
                "open_orders": [{"id": o.id, "client_id": o.client_id, "symbol": o.symbol, "side": o.side,
                                 "price": _s(o.price), "qty": _s(o.qty), "executed": _s(o.executed),
                                 "status": o.status} for o in a.open_orders()],
                "fills": [self._fill_json(f) for f in a.fills if not f.hidden],
                "down": self.down,
            }

    # --- request handling ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Reply:
        url = urlsplit(raw_path)
        path = url.path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if path.startswith("/_"):
            return self._control(method, path, body)
        if self.down is not None:
            raise _err(503, "MAINTENANCE", "System under maintenance")
        entry: dict[str, Any] = {"method": method, "path": path, "query": query}
        self.log.append(entry)
        if (method, path) in _PUBLIC:
            return self._public(path, query)
        instruction = _INSTRUCTIONS.get((method, path))
        if instruction is None:
            raise _err(404, "RESOURCE_NOT_FOUND", f"no route {method} {path}")
        if method == "GET":
            params: dict[str, Any] = query
        else:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise _err(400, "INVALID_CLIENT_REQUEST", "body is not JSON") from None
            if not isinstance(params, dict):
                raise _err(400, "INVALID_CLIENT_REQUEST", "body must be an object")
        entry["params"] = params
        self._authenticate(instruction, params, headers)
        entry["authenticated"] = True
        with self.lock:
            try:
                reply = self._private(instruction, params)
            except VenueError as e:
                raise _err(e.status, e.code, e.message) from None
            if isinstance(reply.body, dict) and instruction == "orderExecute":
                entry["accepted"] = reply.body.get("clientId")
            self._save()
        return reply

    def _authenticate(self, instruction: str, params: dict[str, Any], headers: Any) -> None:
        key, sig, ts = headers.get("X-API-Key"), headers.get("X-Signature"), headers.get("X-Timestamp")
        window = headers.get("X-Window") or "5000"
        if not key or not sig or not ts:
            raise _err(401, "UNAUTHORIZED", "Missing X-API-Key, X-Signature or X-Timestamp header")
        if key != self.api_key:
            raise _err(401, "UNAUTHORIZED", "API key not found")
        try:
            ts_i, window_i = int(ts), int(window)
        except ValueError:
            raise _err(400, "INVALID_CLIENT_REQUEST", "X-Timestamp and X-Window must be integers") from None
        if not 0 < window_i <= 60000:
            raise _err(400, "INVALID_CLIENT_REQUEST", "X-Window must be at most 60000")
        now = self.now_ms()
        if now > ts_i + window_i:
            raise _err(400, "INVALID_CLIENT_REQUEST", "Request has expired")
        if ts_i > now + window_i:
            raise _err(400, "INVALID_CLIENT_REQUEST", "Request timestamp is in the future")
        message = expected_string(instruction, params, ts, window)
        try:
            self._pub.verify(base64.b64decode(sig, validate=True), message.encode())
        except Exception:
            raise _err(401, "INVALID_SIGNATURE", "Invalid signature") from None

    def _public(self, path: str, query: dict[str, str]) -> _Reply:
        if path == "/api/v1/markets":
            with self.lock:
                return _Reply(200, [self._market_json(m) for m in self.account.markets.values()])
        if path == "/api/v1/time":
            return _Reply(200, self.now_ms())
        if path == "/api/v1/ping":
            return _Reply(200, "pong")
        with self.lock:
            try:
                m = self.account.spec(query.get("symbol"))
            except VenueError as e:
                raise _err(e.status, e.code, e.message) from None
            last = self.account.prices[m.symbol]
        return _Reply(200, {"symbol": m.symbol, "firstPrice": _s(last), "lastPrice": _s(last), "high": _s(last),
                            "low": _s(last), "volume": "0", "quoteVolume": "0", "trades": "0",
                            "priceChange": "0", "priceChangePercent": "0"})

    @staticmethod
    def _u32(raw: Any) -> Optional[int]:
        if raw is None:
            return None
        try:
            cid = int(raw)
        except (TypeError, ValueError):
            raise _err(400, "INVALID_CLIENT_REQUEST", "clientId must be a u32") from None
        if not 0 <= cid <= 2**32 - 1:
            raise _err(400, "INVALID_CLIENT_REQUEST", "clientId must be a u32")
        return cid

    def _one_order(self, params: dict[str, Any]) -> VOrder:
        """``orderQuery`` / ``orderCancel``: one of orderId or clientId, open orders only."""
        cid, oid = self._u32(params.get("clientId")), params.get("orderId")
        if (cid is None) == (oid is None):
            raise _err(400, "INVALID_CLIENT_REQUEST", "Specify exactly one of orderId and clientId")
        o = self.account.find(self.account.spec(params.get("symbol")).symbol, cid, None if oid is None else str(oid))
        if o is None:
            raise _err(404, "RESOURCE_NOT_FOUND", "Order not found")
        return o

    @staticmethod
    def _page(rows: list[Any], params: dict[str, Any]) -> list[Any]:
        direction = params.get("sortDirection", "Asc")
        if direction not in ("Asc", "Desc"):
            raise _err(400, "INVALID_CLIENT_REQUEST", "sortDirection must be Asc or Desc")
        try:
            offset = int(params.get("offset", 0))
            limit = min(int(params.get("limit", 100)), 1000)
        except ValueError:
            raise _err(400, "INVALID_CLIENT_REQUEST", "limit and offset must be integers") from None
        if direction == "Desc":
            rows = rows[::-1]
        return rows[offset:offset + limit]

    def _private(self, instruction: str, params: dict[str, Any]) -> _Reply:
        a = self.account
        if instruction == "balanceQuery":
            return _Reply(200, {k: {"available": _s(a.available[k]), "locked": _s(a.locked.get(k, D(0))),
                                    "staked": "0"} for k in a.available})
        if instruction == "orderExecute":
            return self._execute(params)
        if instruction == "orderQuery":
            return _Reply(200, self._order_json(self._one_order(params)))
        if instruction == "orderCancel":
            return _Reply(200, self._order_json(a.cancel(self._one_order(params))))
        if instruction == "orderQueryAll":
            sym = params.get("symbol")
            return _Reply(200, [self._order_json(o) for o in a.open_orders(None if sym is None else a.spec(sym).symbol)])
        if instruction == "orderCancelAll":
            sym = a.spec(params.get("symbol")).symbol
            return _Reply(200, [self._order_json(a.cancel(o)) for o in a.open_orders(sym)])
        if instruction == "orderHistoryQueryAll":
            rows = [o for o in a.orders.values()
                    if ("symbol" not in params or o.symbol == params["symbol"])
                    and ("orderId" not in params or o.id == str(params["orderId"]))]
            return _Reply(200, [self._history_json(o) for o in self._page(rows, params)])
        if instruction == "fillHistoryQueryAll":
            ft = params.get("fillType")
            if ft is not None and ft not in FILL_TYPES:
                raise _err(400, "INVALID_CLIENT_REQUEST", f"unknown fillType {ft}")
            try:
                since, until = int(params.get("from", 0)), int(params.get("to", 2**62))
            except ValueError:
                raise _err(400, "INVALID_CLIENT_REQUEST", "from and to are milliseconds") from None
            rows = sorted((f for f in a.fills if not f.hidden and since <= f.ts_ms <= until
                           and ("symbol" not in params or f.symbol == params["symbol"])
                           and ("orderId" not in params or f.order_id == str(params["orderId"]))
                           and (ft is None or f.fill_type == ft)), key=lambda f: (f.ts_ms, f.seq))
            return _Reply(200, [self._fill_json(f) for f in self._page(rows, params)])
        raise _err(404, "RESOURCE_NOT_FOUND", instruction)

    def _execute(self, p: dict[str, Any]) -> _Reply:
        cid = self._u32(p.get("clientId"))
        side = p.get("side")
        if side not in (BID, ASK):
            raise _err(400, "INVALID_CLIENT_REQUEST", "side must be Bid or Ask")
        for k in ("price", "quantity"):  # OpenAPI: decimals are strings
            if k in p and not isinstance(p[k], str):
                raise _err(400, "INVALID_CLIENT_REQUEST", f"{k} must be a string")
        order_type = p.get("orderType")
        if order_type not in ("Limit", "Market"):
            raise _err(400, "INVALID_CLIENT_REQUEST", "orderType must be Limit or Market")
        tif = p.get("timeInForce", "GTC")
        if tif != "GTC":
            raise _err(400, "INVALID_CLIENT_REQUEST", "this fake supports GTC only")
        try:
            qty = D(p["quantity"])
            price = D(p["price"]) if order_type == "Limit" else None
        except (KeyError, InvalidOperation):
            raise _err(400, "INVALID_CLIENT_REQUEST", "missing or malformed price/quantity") from None
        o = self.account.place(str(p.get("symbol")), side, order_type, qty, price, cid,
                               bool(p.get("postOnly", False)), tif)
        return _Reply(200, self._order_json(o))

    def _control(self, method: str, path: str, body: bytes) -> _Reply:
        data = json.loads(body or b"{}") if method != "GET" else {}
        if path == "/_fault" and method == "POST":
            data = dict(data)
            self.add_fault(str(data.pop("kind")), int(data.pop("count", 1)), **data)
            return _Reply(200, {"pending": len(self.faults)})
        if path == "/_fault" and method == "DELETE":
            with self.lock:
                self.faults.clear()
            return _Reply(200, {"pending": 0})
        if path == "/_price" and method == "POST":
            fills = self.set_price(D(str(data["price"])), str(data.get("symbol", next(iter(self.account.markets)))))
            return _Reply(200, {"fills": len(fills)})
        if path == "/_clock" and method == "POST":
            self.clock_offset_ms = int(data["offset_ms"])
            return _Reply(200, {"offset_ms": self.clock_offset_ms})
        if path == "/_cancel_all" and method == "POST":
            return _Reply(200, {"cancelled": self.cancel_all(data.get("symbol"))})
        if path == "/_balance" and method == "POST":
            self.move_balance(str(data["asset"]), None if "delta" not in data else D(str(data["delta"])),
                              None if "available" not in data else D(str(data["available"])))
            return _Reply(200, self.snapshot()["balances"])
        if path == "/_system_fill" and method == "POST":
            f = self.system_fill(str(data["symbol"]), str(data["side"]), D(str(data["quantity"])),
                                 None if "price" not in data else D(str(data["price"])))
            return _Reply(200, self._fill_json(f))
        if path == "/_hide_fills" and method == "POST":
            self.hide_fills(bool(data.get("on", True)))
            return _Reply(200, {"hide_fills": self.account.hide_fills})
        if path == "/_reveal" and method == "POST":
            return _Reply(200, {"revealed": self.reveal()})
        if path == "/_down" and method == "POST":
            mode = str(data.get("mode", "503"))
            for_s = data.get("for_s")
            # answer first: a "refuse" outage closes this very listener
            threading.Timer(0.05, self.go_down, args=(mode, None if for_s is None else float(for_s))).start()
            return _Reply(200, {"down": mode})
        if path == "/_up" and method == "POST":
            self.come_up()
            return _Reply(200, {"down": None})
        if path == "/_market" and method == "POST":
            with self.lock:
                m = self.account.spec(data["symbol"])
                for k in ("min_mult", "max_mult", "liquidity"):
                    if k in data:
                        setattr(m, k, None if data[k] is None else D(str(data[k])))
                if "state" in data:
                    m.state = str(data["state"])
                self._save()
            return _Reply(200, self._market_json(m))
        if path == "/_state" and method == "GET":
            return _Reply(200, self.snapshot())
        if path == "/_log" and method == "GET":
            return _Reply(200, self.log)
        raise _err(404, "RESOURCE_NOT_FOUND", f"no control route {method} {path}")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeBackpack
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if self.owner.down == "refuse" and not path.startswith("/_"):
            self.close_connection = True  # a kept-alive connection dies too: no answer at all
            return
        fault = None if path.startswith("/_") else self.owner._take_fault(self.command, path)
        if fault is not None and not fault["after"]:
            if fault["kind"] == "timeout":
                time.sleep(float(fault["delay"]))
            elif fault["kind"] == "drop":
                self.close_connection = True
                return
            else:
                self._write(self._fault_reply(fault))
                return
        try:
            reply = self.owner.handle(self.command, self.path, self.headers, body)
        except _Reply as r:
            reply = r
        if fault is not None:
            if fault["kind"] == "timeout":
                time.sleep(float(fault["delay"]))  # the client has given up by now
            elif fault["kind"] == "drop":
                self.close_connection = True
                return
            else:
                reply = self._fault_reply(fault)
        self._write(reply)

    @staticmethod
    def _fault_reply(fault: dict[str, Any]) -> _Reply:
        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
        return _Reply(int(fault["status"]), fault["body"], headers)

    def _write(self, reply: _Reply) -> None:
        if isinstance(reply.body, str) and not reply.body.startswith(("{", "[")) and reply.status >= 400:
            data, ctype = reply.body.encode(), "text/html"
        else:
            data, ctype = json.dumps(reply.body).encode(), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away (timeout faults)

    do_GET = do_POST = do_DELETE = _serve


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key", required=True, help="base64 ED25519 public key the fake accepts")
    ap.add_argument("--state", type=Path, help="JSON setup/snapshot file")
    ap.add_argument("--symbol", default="SOL_USDC", help="a market to list first (added if unknown)")
    ap.add_argument("--price", default=None, help="its start price")
    args = ap.parse_args(argv)
    base, quote = args.symbol.split("_", 1)
    markets = (MarketSpec(args.symbol, base, quote),
               *[m for m in DEFAULT_MARKETS if m.symbol != args.symbol])
    markets = tuple(next((d for d in DEFAULT_MARKETS if d.symbol == m.symbol), m) for m in markets)
    prices = {args.symbol: D(args.price)} if args.price is not None else None
    fake = FakeBackpack(args.api_key, markets=markets, prices=prices, host=args.host, port=args.port,
                        state_path=args.state)
    url = fake.start()
    fake._save()
    print(f"fake backpack listening on {url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
