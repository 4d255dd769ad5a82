"""Backpack request signing (pure: no I/O, no clock).

Backpack signs the string::

    instruction=<instr>&<params sorted by key as k=v, joined by &>&timestamp=<ms>&window=<ms>

with the account's ED25519 key; booleans are written lowercase (``postOnly=true``). A batch of
orders contributes ``instruction=orderExecute&<sorted kv>`` per order, and ``timestamp``/``window``
are appended once at the end. The secret is a base64 32-byte seed; a 64-byte keypair
(seed + public key) is accepted by using its first 32 bytes, as ccxt does.

Nothing here logs; callers must not log the secret or the signature either.
"""
from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any, Mapping, Optional, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import CredentialsError

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000

# (method, path) -> instruction, from Backpack's docs. Paths without the leading slash.
INSTRUCTIONS: dict[tuple[str, str], str] = {
    ("GET", "api/v1/order"): "orderQuery",
    ("POST", "api/v1/order"): "orderExecute",
    ("DELETE", "api/v1/order"): "orderCancel",
    ("GET", "api/v1/orders"): "orderQueryAll",
    ("POST", "api/v1/orders"): "orderExecute",
    ("DELETE", "api/v1/orders"): "orderCancelAll",
    ("GET", "api/v1/capital"): "balanceQuery",
    ("GET", "api/v1/account"): "accountQuery",
    ("PATCH", "api/v1/account"): "accountUpdate",
    ("GET", "wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "api/v1/position"): "positionQuery",
}


def instruction_for(method: str, path: str) -> Optional[str]:
    """The instruction a signed endpoint needs, or None for a public endpoint."""
    return INSTRUCTIONS.get((method.upper(), path.lstrip("/")))


def format_value(value: Any) -> str:
    """How one parameter value appears in the signing string (and in query strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


def format_decimal(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: Decimal('1.50') -> '1.5', Decimal('1E+2') -> '100'."""
    if not value.is_finite():
        raise ValueError(f"refusing to send non-finite number {value}")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _sorted_pairs(params: Optional[Mapping[str, Any]]) -> str:
    if not params:
        return ""
    return "&".join(f"{k}={format_value(params[k])}" for k in sorted(params) if params[k] is not None)


def signing_string(instruction: str, params: Optional[Mapping[str, Any]], timestamp_ms: int,
                   window_ms: int = DEFAULT_WINDOW_MS) -> str:
    """The exact bytes (as text) Backpack verifies for a single request."""
    parts = [f"instruction={instruction}"]
    body = _sorted_pairs(params)
    if body:
        parts.append(body)
    parts.append(f"timestamp={int(timestamp_ms)}&window={int(window_ms)}")
    return "&".join(parts)


def batch_signing_string(orders: Sequence[Mapping[str, Any]], timestamp_ms: int,
                         window_ms: int = DEFAULT_WINDOW_MS, instruction: str = "orderExecute") -> str:
    """Signing string for ``POST /api/v1/orders`` (a list of orders)."""
    parts = []
    for order in orders:
        body = _sorted_pairs(order)
        parts.append(f"instruction={instruction}&{body}" if body else f"instruction={instruction}")
    parts.append(f"timestamp={int(timestamp_ms)}&window={int(window_ms)}")
    return "&".join(parts)


def load_private_key(secret_b64: str) -> Ed25519PrivateKey:
    """ED25519 key from a base64 32-byte seed (or a 64-byte seed+public keypair)."""
    try:
        raw = base64.b64decode(secret_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialsError("Backpack API secret is not valid base64") from None
    if len(raw) not in (32, 64):
        raise CredentialsError(f"Backpack API secret must decode to 32 (or 64) bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw[:32])


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    """The base64 public key Backpack calls the API key (X-API-Key)."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign(private_key: Ed25519PrivateKey, message: str) -> str:
    """Base64 ED25519 signature of ``message`` (UTF-8)."""
    return base64.b64encode(private_key.sign(message.encode("utf-8"))).decode("ascii")


def verify(api_key_b64: str, message: str, signature_b64: str) -> bool:
    """True if ``signature_b64`` is a valid signature of ``message`` by ``api_key_b64``."""
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(api_key_b64, validate=True))
        pub.verify(base64.b64decode(signature_b64, validate=True), message.encode("utf-8"))
    except Exception:
        return False
    return True


def signed_headers(api_key: str, private_key: Ed25519PrivateKey, instruction: str,
                   params: Optional[Mapping[str, Any]], timestamp_ms: int,
                   window_ms: int = DEFAULT_WINDOW_MS) -> dict[str, str]:
    """The four X-* headers for one signed request."""
    if not 0 < window_ms <= MAX_WINDOW_MS:
        raise ValueError(f"window must be 1..{MAX_WINDOW_MS} ms, got {window_ms}")
    message = signing_string(instruction, params, timestamp_ms, window_ms)
    return {
        "X-API-Key": api_key,
        "X-Signature": sign(private_key, message),
        "X-Timestamp": str(int(timestamp_ms)),
        "X-Window": str(int(window_ms)),
    }


def ws_subscribe_signature(api_key: str, private_key: Ed25519PrivateKey, timestamp_ms: int,
                           window_ms: int = DEFAULT_WINDOW_MS) -> list[str]:
    """The ``signature`` array of a private WebSocket SUBSCRIBE: [key, sig, ts, window]."""
    message = signing_string("subscribe", None, timestamp_ms, window_ms)
    return [api_key, sign(private_key, message), str(int(timestamp_ms)), str(int(window_ms))]
