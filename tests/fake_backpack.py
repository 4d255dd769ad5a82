"""A fake Backpack REST server on 127.0.0.1 for offline tests of the real adapter.

It checks what the real API checks on every private request: the API key, the time window
(``X-Window`` <= 60000; refused once now > timestamp + window, or when the timestamp is more
than a window in the future: the latter is this fake's assumption) and the ED25519 signature over
``instruction=…&<sorted params>&timestamp=…&window=…``. The signing string is rebuilt here
independently of ``gridbot.exchange._sign`` so a bug there cannot hide itself.

Orders, balances and fills live in ``gridbot.exchange.paper.PaperVenue`` (the paper engine); this
module only speaks Backpack's wire format around it. Only the first market is tradable.

Control endpoints (no auth, test use only):

    POST   /_fault  {"kind": "429"|"5xx"|"error"|"timeout"|"drop", "count": 1,
                     "path": "/api/v1/order", "method": "POST", "status": 503,
                     "body": {...} or "text", "retry_after": "1", "delay": 2.0, "after": false}
    DELETE /_fault  clear pending faults
    POST   /_price  {"symbol": "SOL_USDC", "price": "149.5"}  -> fills it caused
    POST   /_clock  {"offset_ms": -10000}                     skew the server clock
    GET    /_state  venue snapshot; GET /_log: every request seen (no headers)

``after: true`` processes the request first and then fails (default for timeout and drop):
that is "accepted, but the client never heard".

Standalone: ``python tests/fake_backpack.py --port P --api-key PUB [--state FILE]``. FILE is
rewritten after every change with ``{"venue": PaperVenue.to_dict(), "order_ids": [...],
"summary": {...}}``; a restarted fake continues from it (orders, balances, fills, price). A
hand-written FILE without "venue" may give the start: ``{"price": "150", "balances": {"SOL": "10"}}``.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridbot.errors import OrderRejected  # noqa: E402
from gridbot.exchange.base import Market, Order, OrderStatus, Side  # noqa: E402
from gridbot.exchange.paper import PaperVenue  # noqa: E402

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

DEFAULT_MARKET = Market("SOL_USDC", "SOL", "USDC", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"))


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


def _s(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


class FakeBackpack:
    """In-process server. ``with FakeBackpack(pub) as fake: fake.base_url`` …"""

    def __init__(self, api_key: str, *, market: Market = DEFAULT_MARKET,
                 extra_markets: tuple[Market, ...] = (),
                 balances: Optional[dict[str, Decimal]] = None, price: Decimal = Decimal("150"),
                 maker_fee: Decimal = Decimal("0.0008"), taker_fee: Decimal = Decimal("0.001"),
                 host: str = "127.0.0.1", port: int = 0, state_path: Optional[Path] = None) -> None:
        self.api_key = api_key
        self._pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(api_key))
        self.market = market
        self.extra_markets = extra_markets
        self.state_path = state_path
        self.lock = threading.RLock()
        self.faults: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.clock_offset_ms = 0
        self._ids: list[int] = []  # clientIds in placement order (order history)
        self._created: dict[int, int] = {}
        self._post_only: dict[int, bool] = {}
        saved = json.loads(state_path.read_text()) if state_path is not None and state_path.exists() else {}
        if "venue" in saved:  # a snapshot this fake wrote: continue where it stopped
            self.venue = PaperVenue.from_dict(saved["venue"])
            self.market = self.venue.market
            self._ids = [int(c) for c in saved.get("order_ids", [])]
        else:  # fresh, or a hand-written setup {"price": "150", "balances": {"SOL": "10", ...}}
            if "balances" in saved:
                balances = {a: Decimal(str(v)) for a, v in saved["balances"].items()}
            if "price" in saved:
                price = Decimal(str(saved["price"]))
            self.venue = PaperVenue(market, dict(balances or {market.base: Decimal("10"),
                                                              market.quote: Decimal("10000")}),
                                    maker_fee, taker_fee)
            self.venue.set_price(price)
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
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-backpack",
                                        daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

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

    # --- test helpers --------------------------------------------------------------------------

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

    def set_price(self, price: Decimal) -> list[Any]:
        with self.lock:
            fills = self.venue.set_price(price)
            self._save()
            return fills

    def placed(self, client_id: int) -> int:
        """How many times an order with this clientId was accepted."""
        return sum(1 for e in self.log if e.get("accepted") == client_id)

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

    def _order_json(self, o: Order) -> dict[str, Any]:
        if o.status is OrderStatus.open:
            status = "PartiallyFilled" if o.filled_qty else "New"
        else:
            status = {OrderStatus.filled: "Filled", OrderStatus.cancelled: "Cancelled",
                      OrderStatus.rejected: "Expired"}[o.status]
        return {
            "id": o.exchange_id, "clientId": o.client_id, "symbol": o.symbol,
            "side": "Bid" if o.side is Side.buy else "Ask", "orderType": "Limit" if o.price else "Market",
            "timeInForce": "GTC", "price": _s(o.price), "quantity": _s(o.qty),
            "executedQuantity": _s(o.filled_qty), "executedQuoteQuantity": _s(o.filled_qty * o.price),
            "status": status, "postOnly": self._post_only.get(o.client_id, False),
            "selfTradePrevention": "RejectTaker", "createdAt": self._created.get(o.client_id, 0),
        }

    def _market_json(self, m: Market) -> dict[str, Any]:
        return {"symbol": m.symbol, "baseSymbol": m.base, "quoteSymbol": m.quote, "marketType": "SPOT",
                "orderBookState": "Open",
                "filters": {"price": {"tickSize": _s(m.tick_size), "minPrice": _s(m.tick_size), "maxPrice": None},
                            "quantity": {"stepSize": _s(m.step_size), "minQuantity": _s(m.min_qty),
                                         "maxQuantity": None}}}

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        with self.lock:
            data = {"venue": self.venue.to_dict(), "order_ids": self._ids, "summary": self.snapshot()}
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_path)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "price": _s(self.venue.last_price),
                "balances": {a: {"available": str(b.available), "locked": str(b.locked)}
                             for a, b in self.venue.balances().items()},
                "open_orders": [{k: (str(v) if isinstance(v, Decimal) else v.value if isinstance(v, Side | OrderStatus)
                                     else v) for k, v in asdict(o).items()} for o in self.venue.open_orders()],
                "fills": [{k: (str(v) if isinstance(v, Decimal) else v.value if isinstance(v, Side) else v)
                           for k, v in asdict(f).items()} for f in self.venue.fills_since(0)],
            }

    # --- request handling ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Reply:
        url = urlsplit(raw_path)
        path = url.path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if path.startswith("/_"):
            return self._control(method, path, body)
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
            reply = self._private(instruction, params)
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
            return _Reply(200, [self._market_json(m) for m in (self.market, *self.extra_markets)])
        if path == "/api/v1/time":
            return _Reply(200, self.now_ms())
        if path == "/api/v1/ping":
            return _Reply(200, "pong")
        sym = query.get("symbol")
        if sym != self.market.symbol:
            raise _err(400, "INVALID_SYMBOL", f"unknown symbol {sym}")
        with self.lock:
            last = self.venue.last_price
        return _Reply(200, {"symbol": sym, "firstPrice": _s(last), "lastPrice": _s(last), "high": _s(last),
                            "low": _s(last), "volume": "0", "quoteVolume": "0", "trades": "0",
                            "priceChange": "0", "priceChangePercent": "0"})

    def _check_symbol(self, params: dict[str, Any]) -> None:
        if params.get("symbol") != self.market.symbol:
            raise _err(400, "INVALID_SYMBOL", f"unknown symbol {params.get('symbol')}")

    def _client_id(self, params: dict[str, Any]) -> Optional[int]:
        raw = params.get("clientId")
        if raw is None:
            oid = params.get("orderId")
            if oid is None:
                return None
            for o in self.venue.open_orders():
                if o.exchange_id == str(oid):
                    return o.client_id
            raise _err(404, "RESOURCE_NOT_FOUND", "Order not found")
        try:
            cid = int(raw)
        except (TypeError, ValueError):
            raise _err(400, "INVALID_CLIENT_REQUEST", "clientId must be a u32") from None
        if not 0 <= cid <= 2**32 - 1:
            raise _err(400, "INVALID_CLIENT_REQUEST", "clientId must be a u32")
        return cid

    def _record(self, cid: int, post_only: bool) -> None:
        self._ids.append(cid)
        self._created[cid] = self.now_ms()
        self._post_only[cid] = post_only

    def _private(self, instruction: str, params: dict[str, Any]) -> _Reply:
        if instruction == "balanceQuery":
            return _Reply(200, {a: {"available": _s(b.available), "locked": _s(b.locked), "staked": "0"}
                                for a, b in self.venue.balances().items()})
        self._check_symbol(params)
        if instruction == "orderExecute":
            return self._execute(params)
        if instruction == "orderQuery":
            cid = self._client_id(params)
            o = self.venue.get_order(cid) if cid is not None else None
            if o is None or o.status is not OrderStatus.open:  # like Backpack: open orders only
                raise _err(404, "RESOURCE_NOT_FOUND", "Order not found")
            return _Reply(200, self._order_json(o))
        if instruction == "orderQueryAll":
            return _Reply(200, [self._order_json(o) for o in self.venue.open_orders()])
        if instruction == "orderCancel":
            cid = self._client_id(params)
            o = self.venue.get_order(cid) if cid is not None else None
            if o is None or o.status is not OrderStatus.open:
                raise _err(404, "RESOURCE_NOT_FOUND", "Order not found")
            return _Reply(200, self._order_json(self.venue.cancel(cid)))
        if instruction == "orderCancelAll":
            return _Reply(200, [self._order_json(self.venue.cancel(o.client_id)) for o in self.venue.open_orders()])
        if instruction == "orderHistoryQueryAll":
            rows = [o for o in (self.venue.get_order(c) for c in reversed(self._ids)) if o is not None]
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
            return _Reply(200, [self._order_json(o) for o in rows[offset:offset + limit]])
        if instruction == "fillHistoryQueryAll":
            since = int(params.get("from", 0))
            fills = sorted(self.venue.fills_since(since), key=lambda f: f.timestamp_ms, reverse=True)
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
            return _Reply(200, [{
                "tradeId": f.trade_id, "orderId": getattr(self.venue.get_order(f.client_id), "exchange_id", ""), "clientId": str(f.client_id),
                "symbol": f.symbol, "side": "Bid" if f.side is Side.buy else "Ask", "price": _s(f.price),
                "quantity": _s(f.qty), "fee": _s(f.fee), "feeSymbol": f.fee_asset, "isMaker": f.is_maker,
                "timestamp": _iso(f.timestamp_ms)} for f in fills[offset:offset + limit]])
        raise _err(404, "RESOURCE_NOT_FOUND", instruction)

    def _execute(self, p: dict[str, Any]) -> _Reply:
        cid = self._client_id(p)
        if cid is None:
            raise _err(400, "INVALID_CLIENT_REQUEST", "this fake requires clientId")
        side = {"Bid": Side.buy, "Ask": Side.sell}.get(p.get("side", ""))
        if side is None:
            raise _err(400, "INVALID_CLIENT_REQUEST", "side must be Bid or Ask")
        for k in ("price", "quantity"):  # Backpack takes decimals as strings
            if k in p and not isinstance(p[k], str):
                raise _err(400, "INVALID_CLIENT_REQUEST", f"{k} must be a string")
        try:
            qty = Decimal(p["quantity"])
            if p.get("orderType") == "Limit":
                if p.get("timeInForce", "GTC") != "GTC":
                    raise _err(400, "INVALID_CLIENT_REQUEST", "this fake supports GTC only")
                post_only = bool(p.get("postOnly", False))
                o = self.venue.place_limit(side, Decimal(p["price"]), qty, cid, post_only=post_only)
                self._record(cid, post_only)
            elif p.get("orderType") == "Market":
                o = self.venue.place_market(side, qty, cid)
                self._record(cid, False)
            else:
                raise _err(400, "INVALID_CLIENT_REQUEST", "orderType must be Limit or Market")
        except OrderRejected as exc:
            text = str(exc)
            low = text.lower()
            code = ("INSUFFICIENT_FUNDS" if "insufficient" in low or "funds" in low or "balance" in low else
                    "INVALID_PRICE" if "tick" in low or "price" in low and "post" not in low else
                    "INVALID_QUANTITY" if "step" in low or "quantity" in low or "qty" in low else
                    "INVALID_ORDER")
            raise _err(400, code, text) from None
        except (KeyError, ArithmeticError):
            raise _err(400, "INVALID_CLIENT_REQUEST", "missing or malformed price/quantity") from None
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
            fills = self.set_price(Decimal(str(data["price"])))
            return _Reply(200, {"fills": len(fills)})
        if path == "/_clock" and method == "POST":
            self.clock_offset_ms = int(data["offset_ms"])
            return _Reply(200, {"offset_ms": self.clock_offset_ms})
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
    ap.add_argument("--symbol", default=DEFAULT_MARKET.symbol)
    ap.add_argument("--price", default="150")
    args = ap.parse_args(argv)
    base, quote = args.symbol.split("_", 1)
    m = Market(args.symbol, base, quote, DEFAULT_MARKET.tick_size, DEFAULT_MARKET.step_size, DEFAULT_MARKET.min_qty)
    fake = FakeBackpack(args.api_key, market=m, price=Decimal(args.price), host=args.host, port=args.port,
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
