"""Healthy means trading: the conditions under which a bot says it is degraded, and since when.

A bot is *degraded* while it is not trading as configured. The runner reports what it sees
(``set(kind, detail)`` while a condition holds, ``set(kind, None)`` once it is over); a condition
counts only after its grace, so a blip does not page anyone while a level gone for minutes does.
The same reasons go to ``STATUS=`` (``gridbot list``), ``/healthz`` (503 while any holds),
``/metrics`` and ``/api/status``. Pure: the caller passes the clock (``time.monotonic()``).

    kind        degraded when                                             grace
    stalled     the main loop has not come round                          0 (the runner measures it)
    starting    the grid is not placed yet (start-up, waiting for the venue) 0
    auth        the venue refused the API key: no orders are placed        0
    exchange    requests to the venue fail (outage, maintenance, network)  EXCHANGE_GRACE_S
    reconcile   the periodic comparison with the venue fails               0
    missing     levels of the running grid have no order                   MISSING_GRACE_S
    range       the price is outside the grid (nothing can trade)          OUT_OF_RANGE_GRACE_S
    stopped     stop-loss / take-profit ended the grid                     0
"""
from __future__ import annotations

from typing import Optional

EXCHANGE_GRACE_S = 10.0  # one failed poll (a blip) is no outage; the adapter retries for ~15 s anyway
MISSING_GRACE_S = 120.0  # a rejected level is retried after 5 s, 10 s, 20 s...: two minutes missing is real
OUT_OF_RANGE_GRACE_S = 600.0  # prices leave a grid for a while; ten minutes is "the range is wrong"

KINDS = ("stalled", "starting", "auth", "exchange", "reconcile", "missing", "range", "stopped")
GRACE = {"exchange": EXCHANGE_GRACE_S, "missing": MISSING_GRACE_S, "range": OUT_OF_RANGE_GRACE_S}


class Health:
    """Conditions that hold now, each with the time it began and a one-line detail."""

    def __init__(self, grace: Optional[dict[str, float]] = None) -> None:
        unknown = set(grace or {}) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown health conditions {sorted(unknown)}")
        self.grace = {**GRACE, **(grace or {})}
        self._since: dict[str, float] = {}
        self._detail: dict[str, str] = {}

    def set(self, kind: str, detail: Optional[str], now: float) -> None:
        """Condition ``kind`` holds (with ``detail``), or no longer holds (``None``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown health condition {kind!r}")
        if detail is None:
            self._since.pop(kind, None)
            self._detail.pop(kind, None)
        else:
            self._since.setdefault(kind, now)
            self._detail[kind] = detail

    def holds(self, kind: str) -> bool:
        return kind in self._since

    def since(self, kind: str) -> Optional[float]:
        return self._since.get(kind)

    def reasons(self, now: float) -> list[str]:
        """Details of the conditions past their grace, in a fixed order; empty = healthy."""
        return [self._detail[k] for k in KINDS
                if k in self._since and now - self._since[k] >= self.grace.get(k, 0.0)]

    def kinds(self, now: float) -> list[str]:
        return [k for k in KINDS if k in self._since and now - self._since[k] >= self.grace.get(k, 0.0)]

    def degraded(self, now: float) -> bool:
        return bool(self.kinds(now))


def failure_kind(exc: BaseException) -> str:
    """A short name for what went wrong talking to the venue, so each kind is logged once per outage."""
    name = type(exc).__name__
    text = str(exc)
    if name == "AuthError":
        return "the API key was refused"
    if "cannot talk to" in text:
        return "unreachable"
    if "did not answer in time" in text:
        return "no answer in time"
    if "rate limit" in text:
        return "rate limited"
    for code in ("MAINTENANCE", "TRADING_PAUSED", " 5"):
        if code in text and "answered" in text:
            return "unavailable (maintenance or server error)"
    if "expired" in text.lower():
        return "request expired (clock)"
    return name
