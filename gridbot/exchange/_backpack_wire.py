"""Backpack's wire format, and the one seam where its failures become gridbot errors.

Private to ``backpack.py``: parsing of order, fill and market objects (``parse_order``,
``parse_fill``, ``parse_market``), the side and status vocabularies, and ``_map_errors()``, which
turns httpx failures, HTTP statuses and Backpack ``{"code","message"}`` bodies into
``ExchangeError`` / ``OrderRejected`` / ``AuthError`` with a one-line message naming the
operation. Pure apart from reading an ``httpx.Response``.
"""
from __future__ import annotations

import contextlib
import email.utils
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Optional

import httpx

from ..errors import AuthError, ExchangeError, OrderRejected
from ..records import Fill, Market, Order, OrderStatus, Side

_SIDE_OUT = {Side.buy: "Bid", Side.sell: "Ask"}
_SIDE_IN = {"Bid": Side.buy, "Ask": Side.sell}
_STATUS_IN = {
    "New": OrderStatus.open,
    "PartiallyFilled": OrderStatus.open,
    "TriggerPending": OrderStatus.open,
    "Triggered": OrderStatus.open,
    "Filled": OrderStatus.filled,
    "Cancelled": OrderStatus.cancelled,
    "Expired": OrderStatus.cancelled,
    "TriggerFailed": OrderStatus.rejected,
}
_TERMINAL_REASON = {"Expired": "Expired", "TriggerFailed": "TriggerFailed", "Cancelled": "Cancelled"}
_AUTH_CODES = {"INVALID_SIGNATURE", "UNAUTHORIZED", "FORBIDDEN"}
_UNAVAILABLE_CODES = {"TRADING_PAUSED", "MAINTENANCE", "SERVER_ERROR", "TIMEOUT"}


class _HTTPFailure(Exception):
    """A final non-2xx answer, before mapping. Internal to this module."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class _NotFound(ExchangeError):
    """Backpack answered RESOURCE_NOT_FOUND / 404 (an ExchangeError for callers outside)."""


@contextlib.contextmanager
def _map_errors(what: str, *, order: bool = False) -> Iterator[None]:
    """The one seam where foreign failures become gridbot errors.

    ``order=True`` marks requests that submit an order: a 4xx refusal there is ``OrderRejected``.
    """
    try:
        yield
    except _HTTPFailure as exc:
        text = f"{what}: Backpack answered {exc.status} {exc.code}: {exc.message}"
        if exc.status == 404 or exc.code == "RESOURCE_NOT_FOUND":
            raise _NotFound(text) from None
        if exc.code in _AUTH_CODES or exc.status in (401, 403):
            raise AuthError(text + " (check the API key credential and its permissions)") from None
        if _is_expired(exc):
            raise ExchangeError(text + " (the host clock is off Backpack's even after re-reading it)") from None
        if exc.status == 429 or exc.code == "TOO_MANY_REQUESTS":
            raise ExchangeError(text + " (rate limit; retries exhausted)") from None
        if exc.code in _UNAVAILABLE_CODES or exc.status >= 500:
            raise ExchangeError(text) from None
        if order and 400 <= exc.status < 500:
            raise OrderRejected(text) from None
        raise ExchangeError(text) from None
    except httpx.TimeoutException as exc:
        # "from None": a network failure is one journal line, never a chained traceback
        raise ExchangeError(f"{what}: Backpack did not answer in time ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ExchangeError(f"{what}: cannot talk to Backpack ({type(exc).__name__}"
                            f"{': ' + detail if detail else ''})") from None
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise ExchangeError(f"{what}: unexpected answer from Backpack ({type(exc).__name__}: {exc})") from exc


def _is_expired(f: _HTTPFailure) -> bool:
    """Backpack refused the request's timestamp (too old for its window, or in the future)."""
    text = f.message.lower()
    return f.status == 400 and f.code == "INVALID_CLIENT_REQUEST" and ("expired" in text or "timestamp" in text)


def _failure_from(resp: httpx.Response) -> _HTTPFailure:
    code, message = "HTTP_ERROR", resp.reason_phrase or "error"
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        if text:
            message = text[:200]
    else:
        if isinstance(body, dict):
            code = str(body.get("code") or code)[:64]
            message = str(body.get("message") or message)[:200]
        else:
            message = str(body)[:200]
    return _HTTPFailure(resp.status_code, code, " ".join(message.split()))


def _retry_after_s(resp: httpx.Response, now: float) -> Optional[float]:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _dec(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    return Decimal(str(value))


def _iso_ms(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def parse_order(d: dict[str, Any]) -> Order:
    """Backpack order object -> Order."""
    status = _STATUS_IN.get(d.get("status", ""))
    if status is None:
        raise ValueError(f"unknown order status {d.get('status')!r}")
    filled = _dec(d.get("executedQuantity"))
    price = _dec(d.get("price"))
    if not price and filled:  # market orders carry no price: report the average
        price = _dec(d.get("executedQuoteQuantity")) / filled
    cid = d.get("clientId")
    raw = str(d.get("status"))
    reason = None
    if raw in _TERMINAL_REASON:
        # the placement answer carries no reason; order history has "expiryReason"
        reason = f"{raw}: {d['expiryReason']}" if d.get("expiryReason") else _TERMINAL_REASON[raw]
    return Order(
        client_id=int(cid) if cid not in (None, "") else 0,
        symbol=str(d["symbol"]),
        side=_SIDE_IN[d["side"]],
        price=price,
        qty=_dec(d.get("quantity"), default=str(filled)),
        filled_qty=filled,
        status=status,
        exchange_id=str(d.get("id", "")),
        reason=reason,
    )


def parse_fill(d: dict[str, Any]) -> Fill:
    """Backpack fill-history row -> Fill.

    ``tradeId`` is optional (null for system fills: liquidations, collateral conversions). Such a
    row still gets a stable id, built from fields history never changes (order id, time, side,
    price, quantity) and prefixed ``sys-`` so it cannot collide with a venue trade id: dropping it
    would lose a balance change, and a random id would book it again on every poll.
    """
    cid = d.get("clientId")
    trade_id = d.get("tradeId")
    if trade_id is None:
        trade_id = "sys-" + "-".join(str(d.get(k) or "") for k in ("orderId", "timestamp", "side", "price", "quantity"))
    return Fill(
        trade_id=str(trade_id),
        client_id=int(cid) if cid not in (None, "") else 0,
        symbol=str(d["symbol"]),
        side=_SIDE_IN[d["side"]],
        price=_dec(d["price"]),
        qty=_dec(d["quantity"]),
        fee=_dec(d.get("fee")),
        fee_asset=str(d.get("feeSymbol") or ""),
        is_maker=bool(d.get("isMaker", True)),
        timestamp_ms=_iso_ms(d["timestamp"]),
        order_id=str(d.get("orderId") or ""),
    )


def parse_market(d: dict[str, Any]) -> Market:
    """Backpack market object -> Market (tick, step, min quantity, price band, book state)."""
    filters = d["filters"]
    lo, hi = filters["price"].get("minMultiplier"), filters["price"].get("maxMultiplier")
    return Market(
        symbol=str(d["symbol"]),
        base=str(d["baseSymbol"]),
        quote=str(d["quoteSymbol"]),
        tick_size=_dec(filters["price"]["tickSize"]),
        step_size=_dec(filters["quantity"]["stepSize"]),
        min_qty=_dec(filters["quantity"]["minQuantity"]),
        price_band=(_dec(lo), _dec(hi)) if lo not in (None, "") and hi not in (None, "") else None,
        state=str(d.get("orderBookState") or "Open"),
    )
