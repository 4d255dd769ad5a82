"""Backpack's transport: throttle, signed requests, bounded retries, clock sync. Private to ``backpack.py``.

``_Transport`` is the half of ``BackpackExchange`` that talks HTTP: the per-process throttle and
the 429 cool-down, exponential backoff with jitter, signing at a timestamp, never re-sending an
outcome-unknown order blindly (``lookup``), and re-reading Backpack's clock. The attributes it
uses are set by ``BackpackExchange.__init__``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any, Awaitable, Callable, Optional

import httpx

from ..models import BackpackConfig
from . import _sign
from ._backpack_wire import _failure_from, _HTTPFailure, _is_expired, _retry_after_s

log = logging.getLogger("gridbot.backpack")


class _Transport:
    _bp: BackpackConfig
    _api_key: str
    _private: Any
    _client: httpx.AsyncClient
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _mono: Callable[[], float]
    _slot_lock: asyncio.Lock
    _next_slot: float
    _cooldown_until: float
    _min_interval: float
    _backoff_base: float
    _backoff_max: float
    _max_retries: int
    _sync: bool
    _synced_at: float
    _resync_s: float
    _offset_ms: int

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
