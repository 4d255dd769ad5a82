"""The main loop: signals, one cycle per exchange event, held and idle levels' backoff, the watchdog, stopping.

``run`` owns the process from the event loop's start to the exit code: it installs the signal
handlers (SIGTERM/SIGINT stop, SIGHUP reloads), starts the status port before the exchange is
reached (so ``/healthz`` can answer 503 while the bot waits), runs ``start_up``, then one ``cycle``
per ``wait_event`` of the exchange, and on a stop applies ``on_stop`` (``shutdown``). SIGTERM is
answered at once at any time, even inside the adapter's retries: the cycle is cancelled (unsent
intents are pending rows the next start sends) after a healthy one got STOP_GRACE_S to finish.
While the exchange is down the loop keeps going and ``_keepalive`` feeds the watchdog as long as
the loop shows progress within STALL_S; a truly hung loop still starves it.
"""
from __future__ import annotations

import logging
import signal
import time
from decimal import Decimal

from .. import strategy as st
from ..errors import AuthError, ExchangeError
from ..models import OnStop
from .base import BotBase
from .failures import WAIT_MAX_S
from .status import STALL_S

log = logging.getLogger("gridbot")

EX_OK = 0  # run() ends in a clean stop (SIGTERM/SIGINT): the exit code main.py passes on
BALANCES_EVERY_S = 30.0  # rate-limited venues: one balance request per half minute is plenty for /metrics
STOP_GRACE_S = 2.0  # SIGTERM lets a healthy cycle finish this long before cancelling it
SHUTDOWN_CANCEL_S = 20.0  # on_stop=cancel gets this long (TimeoutStopSec=30)

# signals that arrived before the loop owned them (main's handlers record them; ``run`` replays them)
early_signals: list[int] = []


class LoopMixin(BotBase):
    """``run``, ``cycle``, held levels, ``shutdown``. Uses every other part of the bot."""

    async def cycle(self) -> None:
        """One pass: new price, new fills, released levels, and whatever the strategy wants done about
        them; the reconcile when it is due. Exchange errors are raised (``_guarded_cycle`` handles them)."""
        now = time.monotonic()
        if self.auth_halted:  # no orders until the key works: one signed probe every auth_retry_s
            if now < self._auth_probe_at:
                self.price = await self.ex.last_price(self.symbol)  # public: the status stays current
                return
            self._auth_probe_at = now + self.auth_retry_s
            await self.ex.balances()  # raises AuthError while the key is still refused
            self._auth_ok()
        self.price = await self.ex.last_price(self.symbol)
        intents = self.apply([st.Tick(self.price)])
        intents += await self.poll_fills()
        intents += self._release_held(now)
        await self.execute(intents)
        if self.state is not None and self.state.close_retry:  # a rejected close: resend what the venue holds
            bal = await self.ex.balances()
            base = self.state.p.base
            await self.execute(self.apply([st.CloseRetry(bal[base].available if base in bal else Decimal(0))]))
        if self.need_reconcile or time.monotonic() - self._reconciled_at >= self.cfg.reconcile_interval_s:
            await self.reconcile()
            await self.execute(self._refill(time.monotonic()))
        now = time.monotonic()
        if now - self._balances_at >= BALANCES_EVERY_S or (intents and not self.ex.rate_limited):
            self._balances = await self.ex.balances()  # for status only; the strategy keeps its own books
            self._balances_at = now
        self._schedule_held(time.monotonic())  # levels refused in this pass: their backoff starts now

    def _schedule_held(self, now: float) -> None:
        s = self.state
        assert s is not None
        for g in [g for g in self._held_due if g not in s.held]:
            del self._held_due[g]
        for g in s.held:
            if g not in self._held_due:
                n = min(max(1, s.gaps[g].rejects), 20)
                self._held_due[g] = now + min(self.hold_max_s, self.hold_base_s * 2 ** (n - 1))

    def _release_held(self, now: float) -> list[st.Intent]:
        """Schedule each newly held level (5 s, 10 s, 20 s ... at most hold_max_s after its n-th refusal
        in a row) and release those whose time has come."""
        self._schedule_held(now)
        due = tuple(sorted(g for g, t in self._held_due.items() if t <= now))
        if not due:
            return []
        for g in due:
            del self._held_due[g]
        return self.apply([st.Release(due)])

    def _refill(self, now: float) -> list[st.Intent]:
        """At a reconcile, while gaps are idle (their sells lacked base, a buy netted below the minimum):
        send ``Refill``. Every Refill arms the next one reconcile_interval_s later, doubling (1, 2, 4 ...
        intervals, at most refill_max_s): a refill that healed them resets it, one that ended short or
        was refused backs off. None while a market order is in flight (its end is settled first)."""
        s = self.state
        assert s is not None
        if s.phase is not st.RUNNING or all(gap.side is not None for gap in s.gaps):
            self._refills, self._refill_due = 0, 0.0
            return []
        if s.markets or now < self._refill_due:
            return []
        self._refills += 1
        n = min(self._refills, 20)
        self._refill_due = now + min(self.refill_max_s, self.cfg.reconcile_interval_s * 2 ** (n - 1))
        return self.apply([st.Refill()])

    async def _guarded_cycle(self) -> None:
        """A cycle whose exchange failures keep the loop (and the watchdog) going: back off, then retry."""
        try:
            await self.cycle()
        except AuthError as exc:
            self._halt_on_auth(exc)
        except ExchangeError as exc:
            self._exchange_failed(exc, "cycle")
            self.need_reconcile = True
            import asyncio

            self._outages += 1
            await asyncio.sleep(min(WAIT_MAX_S, self.retry_base_s * 2 ** min(self._outages - 1, 6)))
        else:
            self._outages = 0
            self._exchange_ok()

    async def _keepalive(self) -> None:
        """Feed the watchdog while the loop shows signs of life within STALL_S: one cycle may sit in the
        adapter's retries for over a minute during an outage, and that is no hang."""
        import asyncio

        iv = self.notifier.watchdog_interval
        if not iv:
            return
        while True:
            await asyncio.sleep(iv)
            if time.monotonic() - self._progress < STALL_S:
                self.notifier.watchdog()

    async def run(self) -> int:
        import asyncio
        import contextlib

        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        for sig in early_signals:  # arrived while we were still loading
            self._request_stop(sig)
        if self.notifier.watchdog_interval:
            self.loop_timeout = min(self.loop_timeout, self.notifier.watchdog_interval)
        self.health.set("starting", "starting", time.monotonic())
        server = None
        if self.cfg.web_port:  # up before the exchange: /healthz answers 503 while the bot waits for it
            from ..status_http import StatusServer

            server = StatusServer(self.cfg.web_port, self.snapshot, self.healthy, self.reasons,
                                  show_balances=self.cfg.web_balances)
            try:
                await server.start()
            except OSError as exc:
                log.error("status port 127.0.0.1:%d unavailable (%s); running without it", self.cfg.web_port, exc)
                server = None
        keepalive = asyncio.ensure_future(self._keepalive())
        waiter = asyncio.ensure_future(self._stop_event.wait())
        try:
            work = asyncio.ensure_future(self.start_up())
            await asyncio.wait((work, waiter), return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and self._failing_since is None:  # a healthy start-up may finish placing
                await asyncio.wait((work,), timeout=STOP_GRACE_S)
            if not work.done():  # SIGTERM while waiting for the exchange: answered at once
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            elif work.result() and not self.stopping:
                self.notifier.ready(self.status_line())
                self.publish(force=True)
                log.info("ready: %s", self.status_line())
            while not self.stopping:
                tick = asyncio.ensure_future(self.ex.wait_event(self.loop_timeout))
                await asyncio.wait((tick, waiter), return_when=asyncio.FIRST_COMPLETED)
                if not tick.done():
                    tick.cancel()
                    break
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                tick.result()
                work = asyncio.ensure_future(self._guarded_cycle())
                await asyncio.wait((work, waiter), return_when=asyncio.FIRST_COMPLETED)
                if not work.done():  # SIGTERM: a healthy cycle may finish (no half-sent intent); one stuck
                    if self._failing_since is None:  # in an outage's retries is cancelled at once
                        await asyncio.wait((work,), timeout=STOP_GRACE_S)
                if not work.done():
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    break
                work.result()
                self.heartbeat()
        finally:
            waiter.cancel()
            keepalive.cancel()
        self.notifier.stopping(f"stopping; {self.status_line()}")
        await self.shutdown()
        self.publish(force=True)
        if server is not None:
            await server.close()
        return EX_OK

    def _request_stop(self, sig: int) -> None:
        log.info("received %s: stopping", signal.Signals(sig).name)
        self.stopping = True
        assert self._stop_event is not None
        self._stop_event.set()

    def _request_reload(self) -> None:
        self._reload_requested = True

    async def shutdown(self) -> None:
        """Apply on_stop, then flush: cancel (orders come back on the next start) or leave them resting.
        Stopped before the start-up reached the venue: nothing to apply, the state is kept as it is."""
        import asyncio

        if self.state is None or not self.started:
            if self.state is not None:
                self.store.put("strategy", self.state.to_dict())
            log.info("stopped before the bot reached the exchange: on_stop not applied")
            await self.ex.close()
            return
        if self.cfg.on_stop is OnStop.cancel:
            intents = self.apply([st.Stop(cancel=True)])
            log.info("on_stop=cancel: cancelling %d orders", len(intents))
            try:  # bounded: the stop must finish inside TimeoutStopSec even if the venue is down
                await asyncio.wait_for(self.execute(intents), SHUTDOWN_CANCEL_S)
            except asyncio.TimeoutError:
                log.error("could not cancel all orders: the exchange did not answer within %.0f s", SHUTDOWN_CANCEL_S)
            except ExchangeError as exc:
                log.error("could not cancel all orders: %s", exc)
        else:
            log.info("on_stop=keep: leaving %d orders on the book", len(self.state.by_cid))
        self.store.put("strategy", self.state.to_dict())
        await self.ex.close()
