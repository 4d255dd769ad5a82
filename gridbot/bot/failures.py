"""Exchange outages and a refused API key, as the bot lives through them.

An outage is logged once per kind of failure (``health.failure_kind``), never a traceback per retry,
and "reachable again" once when it ends; while it lasts the ``exchange`` health condition says so. A
refused key halts placing (a rejection would burn levels) until a signed probe every
``auth_retry_s`` succeeds. Both mark the loop alive (``_progress``): handling a failure is progress,
so the watchdog stays fed (see loop.py).
"""
from __future__ import annotations

import logging
import time

from ..errors import ExchangeError
from ..health import failure_kind
from .base import BotBase

log = logging.getLogger("gridbot")

WAIT_MAX_S = 60.0  # backoff cap while waiting for the exchange (start-up and run time)


class FailuresMixin(BotBase):
    """Outage and auth-halt bookkeeping: log lines, health conditions, the probe schedule."""

    def _exchange_failed(self, exc: ExchangeError, what: str) -> None:
        """The venue could not be reached or failed: one log line per kind of failure per outage."""
        now = time.monotonic()
        self._progress = now  # the loop handled it: alive
        kind = failure_kind(exc)
        if self._failing_since is None:
            self._failing_since = now
        if kind not in self._failing:
            self._failing.add(kind)
            log.error("exchange %s (%s): %s; retrying", kind, what, exc)
        else:
            log.debug("exchange %s (%s): %s", kind, what, exc)
        self.health.set("exchange", f"exchange {kind}", now)

    def _exchange_ok(self) -> None:
        if self._failing_since is not None:
            log.warning("exchange reachable again after %.0f s", time.monotonic() - self._failing_since)
        self._failing_since = None
        self._failing.clear()
        self.health.set("exchange", None, time.monotonic())

    def _halt_on_auth(self, exc: ExchangeError) -> None:
        """The venue refused the key: stop placing orders (a rejection would burn levels), say so once,
        and probe the key every ``auth_retry_s`` until it works again."""
        now = time.monotonic()
        self._progress = now
        if not self.auth_halted:
            log.error("%s: no orders are placed until the key works; trying it again every %.0f s", exc,
                      self.auth_retry_s)
        self.auth_halted = True
        self._auth_probe_at = now + self.auth_retry_s
        self.health.set("auth", "halted: the exchange refused the API key", now)

    def _auth_ok(self) -> None:
        if self.auth_halted:
            log.warning("the API key is accepted again; trading resumes")
        self.auth_halted = False
        self.need_reconcile = True
        self.health.set("auth", None, time.monotonic())
