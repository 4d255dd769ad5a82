"""Start-up: the fresh-start check, open (or re-grid) the state, and keep trying until the exchange answers.

A live instance whose state is empty is built with a ``fresh_start`` step (``main.fresh_start_step``:
the account's check, which refuses a lost state, cancels a pending ``gridbot reset``'s old orders,
and reserves the new state's epoch). ``start_up`` runs it first, inside the same retry loop, until it
succeeds once: it needs the venue too, so an outage then is waited out like any other (below). A
lost state raises AccountError, which is no outage: it leaves ``start_up`` and ``run`` unchanged and
``main`` exits 78 naming ``gridbot reset NAME``.

``open_state`` restores the strategy from the store, or starts a fresh grid; when the grid's own
fields changed since the state was saved (``models.grid_fingerprint``), the old grid's orders are
taken off the venue they were placed on first (``retire_old_grid``), and the books carry over.

``start_up`` retries with backoff (1 s doubling to WAIT_MAX_S, 60 s) while the venue cannot be
reached and tells systemd ``STATUS=waiting for exchange: <kind> ...``. If the venue is still
unreachable after START_GRACE_S (20 s) it sends ``READY=1`` anyway, degraded: the status says
"waiting for exchange", ``/healthz`` answers 503, and the bot keeps retrying and places the grid by
itself once the venue answers. Chosen over a longer ``TimeoutStartSec=`` or ``EXTEND_TIMEOUT_USEC=``
because those keep the unit "activating" for as long as the outage lasts: ``gridbot start`` and
anything ordered after the bot (``gridbot.target``, ``multi-user.target`` at boot) would hang with
it, and the start limit would still fail the unit for good when the outage outlasts the extension.
A running-but-degraded unit is honest (healthy means trading: it says it is not) and needs nobody
to restart it.
"""
from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from .. import strategy as st
from ..errors import AuthError, ConfigError, ExchangeError, OrderRejected
from ..exchange.base import OrderStatus
from ..health import failure_kind
from ..models import OnStop, grid_fingerprint
from ..store import CANCELLED, NOT_PLACED, OPEN, PENDING
from .base import BotBase
from .failures import WAIT_MAX_S
from .orders import ROW_STATUS, now_ms
from .params import build_params, limits

if TYPE_CHECKING:
    from ..records import Market

log = logging.getLogger("gridbot")


class StartupMixin(BotBase):
    """``start_up``, ``open_state`` and ``retire_old_grid``. Uses ``apply`` (persist), ``execute``,
    ``poll_fills``, ``_ours``, ``_our_open_orders`` (orders), ``reconcile``, ``cycle`` (loop) and the
    failure bookkeeping."""

    async def open_state(self) -> None:
        """Restore the strategy, or start a fresh one; re-grid if the grid parameters changed."""
        market = await self.ex.market(self.symbol)
        self.price = await self.ex.last_price(self.symbol)
        snap = self.store.get("strategy")
        fp, old_fp = grid_fingerprint(self.cfg), self.store.get("grid")
        if old_fp:  # rows written before orders recorded their venue belong to the grid running then
            self.store.backfill_market(old_fp.get("exchange", "paper"), old_fp.get("symbol", self.symbol))
        budget = self.cfg.base_investment
        if snap is not None:
            self.state = st.GridState.from_dict(snap)
            if old_fp == fp:
                if self.store.get("started_ms") is None:  # saved before the start was recorded
                    self.store.put("started_ms", self.store.first_order_ms() or now_ms())
                self.apply([limits(self.cfg)])
                return
            old = self.state
            same_base = old.p.base == market.base
            granted = Decimal((old_fp or {}).get("base_investment", "0"))
            # the new grid keeps what the old one owned, adjusted by any change of the coins granted to it
            try:
                await self.check_feasible(market, carried(old, self.cfg.base_investment, granted) if same_base
                                          else None, old_fp or fp)
            except ConfigError:  # the bot will not run: the old grid's orders go as at any stop (on_stop)
                if self.cfg.on_stop is OnStop.cancel and self.state.by_cid:
                    log.warning("the new grid cannot trade; on_stop=cancel: cancelling the %d orders of the old grid",
                                len(self.state.by_cid))
                    await self.retire_old_grid(old_fp or fp)
                raise
            log.warning("grid parameters changed since the last run: cancelling %d orders of the old grid on %s %s",
                        len(self.state.by_cid), (old_fp or {}).get("exchange"), (old_fp or {}).get("symbol"))
            await self.retire_old_grid(old_fp or fp)
            if same_base:  # counted again: the old grid's last fills were booked while it was retired
                budget = carried(old, self.cfg.base_investment, granted)
            elif old.inventory:
                log.warning("the old grid's %s %s stay on the account; the new grid trades %s", old.inventory,
                            old.p.base, market.base)
        else:
            old = None
            await self.check_feasible(market)
        params = build_params(self.cfg, market, self.price, self.ex.taker_fee)  # checked feasible just now
        fresh = st.init(params, budget, self.new_epoch())
        if old is not None:  # keep the books continuous
            fresh.realised, fresh.pairs, fresh.fills = old.realised, old.pairs, old.fills
        self.state = fresh
        with self.store.tx():
            self.store.put("strategy", fresh.to_dict())
            self.store.put("grid", fp)
            self.store.put("started_ms", now_ms())
        waits = self.cfg.exchange != "paper" or old is not None  # see check_feasible
        if waits and self.price is not None and not params.buy[0] <= self.price <= params.sell[-1]:
            log.warning("the price %s is outside the grid %s..%s: the grid waits, placing nothing, until it comes "
                        "into the range", self.price, params.buy[0], params.sell[-1])
        log.info("new grid: %d levels %s..%s, %s %s per level, owns %s %s, client ids in epoch %d", self.cfg.levels,
                 params.buy[0], params.sell[-1], params.qty, market.base, budget, market.base, fresh.epoch)

    async def check_feasible(self, market: "Market", regrid_base: Optional[Decimal] = None,
                             old_fp: Optional[dict[str, Any]] = None) -> None:
        """``validate``'s checks (``feasibility.problems``) on what the venue reports, before a new grid
        is placed: a ConfigError naming every problem (exit 78), so that `validate` ok means the bot
        trades. At a re-grid (``old_fp``: the old grid's fields; ``self.state`` its state) the quote
        its own open buys lock counts, since retiring them frees it, and ``regrid_base`` is the base it
        owned (None: a new base asset, so ``base_investment`` must be on the account). A live price
        outside the range, or a paper one at a re-grid (it has moved since the config's start price),
        is a waiting grid, not an error (``feasibility``'s docstring says why)."""
        from .. import feasibility

        paper, regrid = self.cfg.exchange == "paper", old_fp is not None
        have = {a: b.available for a, b in (await self.ex.balances()).items()}
        if (old_fp is not None and self.state is not None and self.state.p.quote == market.quote
                and old_fp.get("exchange", self.cfg.exchange) == self.cfg.exchange):
            have[market.quote] = have.get(market.quote, Decimal(0)) + await self._own_buys_lock(
                old_fp.get("symbol", self.symbol))
        # paper: name the config keys, as validate does (at a re-grid the balances are the simulation's own)
        sources = (feasibility.PAPER_RULES if regrid else feasibility.paper_sources(self.cfg)) if paper else {}
        venue = feasibility.Venue(market, self.price, have, self.ex.taker_fee, sources)
        # a fresh paper grid's price is the config's own: outside the range it would wait forever. A live
        # price, or a simulated one that has moved since, is the market's: the grid waits for it
        found = feasibility.problems(self.cfg, venue, own_base=regrid_base, waiting_ok=not paper or regrid)
        if found:
            raise ConfigError(f"the grid cannot trade on {self.cfg.exchange} {market.symbol}: {'; '.join(found)}")

    async def _own_buys_lock(self, symbol: str) -> Decimal:
        """The quote this state's buys resting on ``symbol`` lock (the venue's word, our orders only)."""
        assert self.state is not None
        live = self.state.live()
        return sum((o.price * (o.qty - o.filled_qty) for o in await self._our_open_orders(symbol)
                    if o.client_id in live and live[o.client_id][1] is st.BUY), Decimal(0))

    async def retire_old_grid(self, old_fp: dict[str, Any]) -> None:
        """The grid changed (range, size, symbol or exchange): take the old grid's orders off the venue
        they were placed on, under their own symbol, before a new grid starts. Raises if any stays open."""
        assert self.state is not None
        old_ex, old_sym = old_fp.get("exchange", self.cfg.exchange), old_fp.get("symbol", self.symbol)
        rows = [r for r in self.store.orders(PENDING, OPEN) if r.symbol == old_sym and r.exchange == old_ex]
        if old_ex != self.cfg.exchange:
            if old_ex != "paper" and rows:  # real orders on a venue this process cannot reach now
                raise ConfigError(
                    f"{len(rows)} orders of the old grid are still open on {old_ex} {old_sym}; put the old "
                    f"exchange back in the config and stop the instance (on_stop=cancel), or run "
                    f"`gridbot reset {self.name}`")
            with self.store.tx():  # simulated orders: the simulation is simply left behind
                for r in rows:
                    self.store.set_status(r.client_id, CANCELLED, note=f"{old_ex} left behind")
                self.store.delete("paper")
                self.store.delete("paper_cfg")
            return
        self.symbol = old_sym  # every call below goes to the old symbol, never the new one
        try:
            if self.state.phase == st.RUNNING:  # parked: fills heard now place no counter-orders
                self.apply([st.Stop(cancel=True)])
            await self.execute([st.Cancel(c) for c in sorted(self.state.by_cid)])
            for r in self.store.orders(PENDING, OPEN):  # markets, intents never sent, given-up levels
                if r.symbol != old_sym or r.exchange != old_ex:
                    continue
                o = await self._ours(r.client_id)
                if o is None:
                    self.store.set_status(r.client_id, NOT_PLACED if r.status == PENDING else CANCELLED)
                elif o.status is OrderStatus.open:
                    try:
                        await self.ex.cancel(old_sym, r.client_id)
                        self.store.set_status(r.client_id, CANCELLED, order_id=o.exchange_id)
                    except OrderRejected:
                        pass  # closed meanwhile: the open-orders check below tells
                else:
                    self.store.set_status(r.client_id, ROW_STATUS[o.status], o.filled_qty, order_id=o.exchange_id)
            await self.poll_fills()  # the old grid's last fills reach its books (parked: nothing is placed)
            left = [o.client_id for o in await self._our_open_orders(old_sym)]
        finally:
            self.symbol = self.cfg.symbol
        if left:
            raise ExchangeError(f"orders {left} of the old grid are still open on {old_sym}; "
                                f"not starting the new grid until they are cancelled")

    async def start_up(self) -> bool:
        """Run the fresh-start step if any (once it succeeds), open the state, reconcile and place the
        grid, retrying with backoff while the venue cannot be reached (or refuses the key). STATUS says "waiting for exchange ..."; after START_GRACE_S the
        bot reports READY=1 anyway, degraded (see the module docstring). False if told to stop first."""
        import asyncio

        assert self._stop_event is not None
        t0 = time.monotonic()
        delay = self.retry_base_s
        ready = False
        while not self.stopping:
            try:
                if self.fresh_start is not None:  # AccountError (a lost state) is no outage: it ends start_up
                    await self.fresh_start()
                    self.fresh_start = None
                if self.state is None:
                    await self.open_state()
                await self.reconcile()
                self.started = True  # the venue answered and the state agrees with it: on_stop applies from now
                if self.auth_halted:
                    self._auth_ok()
                if not self.stopping:  # a SIGTERM during startup: don't re-place what shutdown would cancel
                    await self.execute(self.apply([st.Tick(self.price), st.Resume()]))  # type: ignore[arg-type]
                    await self.cycle()
                self._exchange_ok()
                self.health.set("starting", None, time.monotonic())
                return not self.stopping
            except AuthError as exc:
                self._halt_on_auth(exc)
                wait, kind = self.auth_retry_s, failure_kind(exc)
            except ExchangeError as exc:
                self._exchange_failed(exc, "start")
                wait, kind = delay, failure_kind(exc)
                delay = min(WAIT_MAX_S, delay * 2)
            line = f"waiting for exchange: {kind} (retrying in {wait:.0f} s)"
            self.health.set("starting", line, time.monotonic())
            if not ready and time.monotonic() - t0 >= self.start_grace_s:
                self.notifier.ready(line)  # up, but degraded: /healthz, STATUS= and /metrics say so
                log.warning("ready without the exchange: %s", line)
                ready = True
            else:
                self.notifier.status(line, watchdog=self.notifier.watchdog_interval is not None)
            self._progress = time.monotonic()
            try:
                await asyncio.wait_for(self._stop_event.wait(), wait)
            except asyncio.TimeoutError:
                pass
        return False


def carried(old: st.GridState, base_investment: Decimal, granted: Decimal) -> Decimal:
    """The base a re-grid keeps: what the old grid owned, plus any change of the coins granted to it."""
    return max(Decimal(0), old.inventory + base_investment - granted)
