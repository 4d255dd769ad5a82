"""The bot process: ``gridbot run NAME`` / ``python -m gridbot.runner NAME`` (what each unit runs).

Order of work: load and validate the config (exit 78 = EX_CONFIG on error so systemd's
``RestartPreventExitStatus=78`` stops a restart loop), open the state, reconcile with the venue,
place the grid, then react to fills and prices. The strategy is pure; this module only moves
events in and intents out, writing each intent to the store *before* the exchange call.

Ownership on a shared account: client ids come from epochs handed out by ``new_epoch`` (see
strategy.py); a fill or an open order counts only if it matches an order row we wrote (by the
venue's order id where known, else client id + symbol), and fills are read from ``started_ms``.

Healing on a real venue (issue 9): every placement answer is read (a 200 ``Expired`` is a
rejection; a market order that ended short is settled, so a rebalance never sticks); refused levels
are held and released with backoff (5 s doubling to 5 min), never given up; a reconcile every
``reconcile_interval_s`` (default 30 s) compares live orders with the venue's open orders and re-reads
an hour of fills, so orders cancelled or filled behind the bot's back and late fills are caught;
market rules (price band, book state) are re-read with it and keep levels waiting instead of
burning rejections. A refused API key halts placing (one log line, a signed probe every 60 s) until
the key works. Exchange failures log one line per kind of failure per outage, never a traceback.
What the bot is not doing that it should is its *health* (``health.py``): ``STATUS=`` starts with
``DEGRADED: <reasons>``, ``/healthz`` answers 503 with the reasons, ``/metrics`` has
``gridbot_degraded`` and ``/api/status`` a ``health`` object.

Start-up without the exchange (boot before the network, maintenance): the bot retries with backoff
(1 s doubling to 60 s) and tells systemd ``STATUS=waiting for exchange: <kind> ...``. If the venue
is still unreachable after START_GRACE_S (20 s) it sends ``READY=1`` anyway, degraded: the status
says "waiting for exchange", ``/healthz`` answers 503, and the bot keeps retrying and places the grid
by itself once the venue answers. Chosen over a longer ``TimeoutStartSec=`` or ``EXTEND_TIMEOUT_USEC=``
because those keep the unit "activating" for as long as the outage lasts: ``gridbot start`` and
anything ordered after the bot (``gridbot.target``, ``multi-user.target`` at boot) would hang with it,
and the start limit would still fail the unit for good when the outage outlasts the extension. A
running-but-degraded unit is honest (healthy means trading: it says it is not) and needs nobody to
restart it. SIGTERM is answered at once at any time, even inside the adapter's retries (the cycle is
cancelled; unsent intents are pending rows the next start sends), and exits 0. While the exchange
is down at run time the loop keeps going and the watchdog is fed (``_keepalive``) as long as the loop
shows progress within STALL_S; a truly hung loop still starves it.

Lean on purpose (20 bots on a small VPS): for paper instances neither OpenSSL (``ssl``,
``_hashlib``) nor typer/rich/pystemd/httpx/cryptography are imported, and asyncio is imported only
after the config said whether TLS will be needed.

Exit codes: 0 clean stop (SIGTERM/SIGINT), 78 bad config/credentials/grid, 1 anything else
(systemd restarts it).
"""
from __future__ import annotations

import sys

if "hashlib" not in sys.modules:  # stdlib falls back to its builtin hashes; saves ~3 MB of libcrypto
    sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Callable, Optional  # noqa: E402

from . import _statelock  # noqa: E402
from . import figures  # noqa: E402
from . import strategy as st  # noqa: E402
from .config import config_dir, load  # noqa: E402
from .errors import AuthError, ConfigError, CredentialsError, ExchangeError, OrderRejected, SnapshotError, UsageError  # noqa: E402
from .exchange.base import Order, OrderStatus, Side  # noqa: E402  (plain dataclasses; strategy imports it anyway)
from .grid import GridError, plan_qty, price_lines, tick_levels  # noqa: E402
from .health import Health, failure_kind  # noqa: E402
from .models import GridConfig, OnStop, OnTrigger, Spacing, grid_fingerprint  # noqa: E402
from .notify import Notifier, setup_logging  # noqa: E402
from .store import CANCELLED, FILLED, NOT_PLACED, DB_NAME, OPEN, PENDING, REJECTED, OrderRow, Store, StoreError  # noqa: E402

if TYPE_CHECKING:
    import asyncio

    from .account import Claim
    from .exchange.base import Exchange, Fill, Market

EX_OK, EX_FAIL, EX_CONFIG = 0, 1, 78
LIMIT_STATES = ("Open", "PostOnly", "LimitOnly")  # Backpack orderBookState values that take limit orders
FILL_OVERLAP_MS = 5000  # re-read fills this far back: duplicates are dropped by trade_id
START_SLACK_MS = 5000  # read fills from a little before the state began: the venue's clock may lag ours
BALANCES_EVERY_S = 30.0  # live venues: one balance request per half minute is plenty for /metrics
RECONCILE_LOOKBACK_MS = 3_600_000  # reconcile re-reads an hour of fills: late fills (shown after the poll's
#                                    5 s overlap) are caught; duplicates are dropped by trade id
HOLD_BASE_S, HOLD_MAX_S = 5.0, 300.0  # a refused level is retried after 5 s, 10 s, 20 s ... at most 5 min
AUTH_RETRY_S = 60.0  # keys refused: try them again this often (one signed request)
START_GRACE_S = 20.0  # exchange unreachable at start: READY=1 (degraded) after this, well inside TimeoutStartSec
WAIT_MAX_S = 60.0  # backoff cap while waiting for the exchange (start-up and run time)
STOP_GRACE_S = 2.0  # SIGTERM lets a healthy cycle finish this long before cancelling it
SHUTDOWN_CANCEL_S = 20.0  # on_stop=cancel gets this long (TimeoutStopSec=30)
STALL_S = 180.0  # the watchdog keeps being fed while one cycle takes up to this (adapter retries ~75 s at worst)
log = logging.getLogger("gridbot")

# fields that change the grid itself; anything else may be applied by SIGHUP
SOFT_FIELDS = ("stop_loss", "take_profit", "on_trigger", "on_stop", "reconcile_interval_s", "schema_ref")


def state_dir_for(name: str, user: bool = False) -> Path:
    """$STATE_DIRECTORY (systemd StateDirectory=gridbot/%i), else $GRIDBOT_STATE_DIR/NAME, else the
    instance's own state directory (/var/lib/gridbot/NAME; with --user ~/.local/state/gridbot/NAME),
    never ./state in the working directory: a run by hand meets the service's lock there."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    base = os.environ.get("GRIDBOT_STATE_DIR")
    return Path(base) / name if base else _statelock.default_state_dir(name, user)


def paper_fingerprint(cfg: GridConfig) -> dict[str, Any]:
    """What the simulated venue is built from: market rules, fees, balances, price model, symbol."""
    return {"symbol": cfg.symbol, "fee_rate": str(cfg.fee_rate), "paper": cfg.paper.model_dump(mode="json")}


def thresholds_fit(p: st.Params, stop_loss: Optional[Decimal], take_profit: Optional[Decimal]) -> list[str]:
    """Why these thresholds do not fit the grid that is running (empty: they do). A config is validated
    against its own range; a reload must not apply thresholds meant for a range not yet running."""
    why = []
    if stop_loss is not None and stop_loss >= p.buy[0]:
        why.append(f"stop_loss {stop_loss} is not below the running grid's lowest line {p.buy[0]}")
    if take_profit is not None and take_profit <= p.sell[-1]:
        why.append(f"take_profit {take_profit} is not above the running grid's highest line {p.sell[-1]}")
    return why


def build_params(cfg: GridConfig, market: "Market", price: Decimal, taker_fee: Decimal) -> st.Params:
    """Config + market rules -> rounded strategy parameters; GridError if the grid cannot exist."""
    lines = price_lines(cfg.lower_price, cfg.upper_price, cfg.levels, cfg.spacing is Spacing.geometric)
    levels = tick_levels(lines, market.tick_size)
    qty = plan_qty(cfg.qty_per_level, cfg.investment, levels, price, market.step_size, market.min_qty, cfg.fee_rate)
    return st.Params(levels.buy, levels.sell, qty, market.step_size, market.min_qty, market.base, market.quote,
                     market_fee=taker_fee, stop_loss=cfg.stop_loss, take_profit=cfg.take_profit,
                     sell_on_trigger=cfg.on_trigger is OnTrigger.sell)


def _limits(cfg: GridConfig) -> st.SetLimits:
    return st.SetLimits(cfg.stop_loss, cfg.take_profit, cfg.on_trigger is OnTrigger.sell)


class Bot:
    """One instance's event loop: exchange <-> strategy, with the store as the write-ahead log."""

    def __init__(self, name: str, cfg: GridConfig, store: Store, exchange: "Exchange", notifier: Notifier,
                 cfg_dir: Path, new_epoch: Callable[[], int]) -> None:
        self.name, self.cfg, self.store, self.ex, self.notifier = name, cfg, store, exchange, notifier
        self.cfg_dir = cfg_dir
        self.new_epoch = new_epoch  # the account's epoch registry: client ids no other state can produce
        self.symbol = cfg.symbol
        self.state: Optional[st.GridState] = None
        self.price: Optional[Decimal] = None
        self.stopping = False
        self.need_reconcile = False
        self.last_loop = time.time()
        self.loop_timeout = 5.0
        self._known: set[tuple[str, str]] = set()  # (symbol, trade_id): trade ids are per market
        self._known_order: deque[tuple[str, str]] = deque()
        self._last_status = ""
        self._last_ping = 0.0
        self._balances: dict[str, Any] = {}
        self._balances_at = -1e9
        self._stop_event: Optional["asyncio.Event"] = None
        self._reload_requested = False
        self.health = Health()
        self.started = False  # start-up reached the venue and reconciled: on_stop applies at shutdown
        self.hold_base_s, self.hold_max_s = HOLD_BASE_S, HOLD_MAX_S
        self._held_due: dict[int, float] = {}  # held gap -> monotonic time of its release
        self._reconciled_at = time.monotonic()
        self.auth_halted = False
        self.auth_retry_s = AUTH_RETRY_S
        self._auth_probe_at = 0.0
        self._failing: set[str] = set()  # failure kinds logged during the current outage
        self._failing_since: Optional[float] = None
        self._progress = time.monotonic()  # last sign of life of the main loop (keeps the watchdog fed)
        self._rules: Optional[st.Rules] = None
        self.retry_base_s = 1.0  # first pause after an exchange failure; doubles up to WAIT_MAX_S
        self._outages = 0  # failed cycles in a row
        self.start_grace_s = START_GRACE_S

    # ------------------------------------------------------------ state <-> store
    def apply(self, events: list[st.Event], fills: Optional[list["Fill"]] = None) -> list[st.Intent]:
        """Feed events (and new fills) to the strategy and persist the result atomically."""
        assert self.state is not None
        if st.needs_epoch(self.state):
            self._renew_epoch()
        if not fills and len(events) == 1 and events[0].__class__ is st.Tick:  # the per-tick path: no I/O
            note = self.state.note
            self.state, intents = st.step(self.state, events[0])
            if not intents and self.state.note == note:
                return []
            with self.store.tx():  # rare: the tick started, triggered or retried something
                self._record(intents, note)
            return intents
        out: list[st.Intent] = []
        changed = False
        with self.store.tx():
            for f in fills or ():
                row = self.store.order(f.client_id)
                if row is None or not row.owns(f.symbol, f.order_id):
                    log.debug("fill %s (order %s %s) is not an order of ours; ignored", f.trade_id, f.client_id,
                              f.order_id)
                    continue  # another bot on the account, or a client id reused by another state
                if not self.store.add_fill(f):
                    continue  # already recorded
                filled = row.filled + f.qty
                status = FILLED if filled >= row.qty else row.status if row.status == CANCELLED else OPEN
                self.store.set_status(f.client_id, status, filled)
                events.append(st.Filled(f.client_id, f.qty, f.price, f.fee, f.fee_asset, f.trade_id))
                log.info("fill %s %s %s @ %s (order %s, fee %s %s)", f.trade_id, f.side.value, f.qty, f.price,
                         f.client_id, f.fee, f.fee_asset)
            for ev in events:
                if st.needs_epoch(self.state):
                    self._renew_epoch()
                note = self.state.note
                self.state, intents = st.step(self.state, ev)
                out.extend(intents)
                changed = changed or not isinstance(ev, st.Tick) or bool(intents) or self.state.note != note
                self._record(intents, note, snapshot=False)
            if changed:
                self._snapshot()
        return out

    def _renew_epoch(self) -> None:
        """Legacy state, or the counter nearly used up: number the next orders in a fresh epoch."""
        assert self.state is not None
        old = self.state.epoch
        epoch = self.new_epoch()
        if epoch == old:
            log.warning("the epoch source gave the running epoch %d again: client ids may repeat", epoch)
        self.state, _ = st.step(self.state, st.NewEpoch(epoch))
        log.info("client ids: epoch %d (was %d)", epoch, old)

    def _record(self, intents: list[st.Intent], old_note: str, snapshot: bool = True) -> None:
        """Inside a transaction: log a new note, write intents (before any exchange call), snapshot."""
        s = self.state
        assert s is not None
        if s.note != old_note:  # stop-loss/take-profit and given-up levels deserve a warning
            bad = s.phase is st.STOPPED or (s.notice is not None and s.notice.level is st.Level.warning)
            log.log(logging.WARNING if bad else logging.INFO, "%s", s.note)
        for it in intents:
            if isinstance(it, st.Place):
                self.store.add_intent(it.client_id, "limit", it.side.value, it.price, it.qty, it.gap,
                                      exchange=self.cfg.exchange, symbol=self.symbol)
            elif isinstance(it, st.Market):
                self.store.add_intent(it.client_id, "market", it.side.value, None, it.qty,
                                      exchange=self.cfg.exchange, symbol=self.symbol)
        if snapshot:
            self._snapshot()

    def _snapshot(self) -> None:
        s = self.state
        assert s is not None
        self.store.put("strategy", s.to_dict())
        self.store.put("profit", {"realised": str(s.realised), "pairs": s.pairs, "fills": s.fills,
                                  "inventory_base": str(s.inventory), "base_delta": str(s.base_delta),
                                  "quote_delta": str(s.quote_delta), "fees_base": str(s.fees_base),
                                  "fees_quote": str(s.fees_quote), "phase": s.phase, "open_orders": len(s.by_cid),
                                  "close": s.closing})

    async def execute(self, intents: list[st.Intent]) -> None:
        """Send intents to the venue in order; every answer goes back to the strategy.

        A placement the venue closed at once (Backpack's 200 ``Expired`` for a post-only order that
        would have taken) is a rejection: the level is held and retried after a backoff. A market
        order that ended without filling completely is a cancellation once its fills are booked (a
        rebalance then places what the base allows). An authentication failure halts trading; any
        other failure to reach the venue stops the queue: the intents left are rows marked pending in
        the store, which the next reconcile sends (same client ids, so never twice)."""
        queue = deque(intents)
        while queue:
            it = queue.popleft()
            self._progress = time.monotonic()
            try:
                if isinstance(it, st.Place):
                    o = await self.ex.place_limit(self.symbol, it.side, it.price, it.qty, it.client_id, True)
                    if o.status is OrderStatus.open:
                        self.store.set_status(it.client_id, OPEN, order_id=o.exchange_id)
                        log.debug("placed %s %s %s @ %s (gap %d)", it.client_id, it.side.value, it.qty, it.price,
                                  it.gap)
                    elif o.status is OrderStatus.filled:  # a limit that took at once (post_only off)
                        self.store.set_status(it.client_id, OPEN, order_id=o.exchange_id)
                        queue.extend(await self.poll_fills())
                    else:
                        reason = o.reason or o.status.value
                        log.info("order %s (%s %s @ %s) closed by the venue at once: %s; the level is retried "
                                 "later", it.client_id, it.side.value, it.qty, it.price, reason)
                        self.store.set_status(it.client_id, REJECTED, o.filled_qty, note=reason[:200],
                                              order_id=o.exchange_id)
                        queue.extend(self.apply([st.Rejected(it.client_id, reason)]))
                elif isinstance(it, st.Market):
                    o = await self.ex.place_market(self.symbol, it.side, it.qty, it.client_id)
                    done = o.status is not OrderStatus.open and o.status is not OrderStatus.filled
                    self.store.set_status(it.client_id, CANCELLED if done else OPEN, order_id=o.exchange_id)
                    log.info("market %s %s %s (%s)", it.side.value, it.qty, self.state and self.state.p.base,
                             it.reason)
                    queue.extend(await self.poll_fills())  # what did fill is booked first
                    if done:
                        queue.extend(self._market_ended(it.client_id, o))
                else:
                    await self.ex.cancel(self.symbol, it.client_id)
                    queue.extend(await self.poll_fills())  # fills before the cancel count first
                    self.store.set_status(it.client_id, CANCELLED)
                    queue.extend(self.apply([st.Cancelled(it.client_id)]))
            except OrderRejected as exc:
                if isinstance(it, st.Cancel):
                    queue.extend(await self._settle(it.client_id))
                    continue
                o = await self.ex.get_order(self.symbol, it.client_id)
                row = self.store.order(it.client_id)
                if (o is not None and row is not None and self._same_order(row, o)
                        and o.status in (OrderStatus.open, OrderStatus.filled)):
                    # a retry of a call that got through the first time
                    log.info("order %s already on the venue; adopted", it.client_id)
                    self.store.set_status(it.client_id, OPEN if o.status is OrderStatus.open else o.status.value,
                                          order_id=o.exchange_id)
                    queue.extend(await self.poll_fills())
                    continue
                log.warning("order %s rejected: %s", it.client_id, exc)
                self.store.set_status(it.client_id, REJECTED, note=str(exc)[:200])
                queue.extend(self.apply([st.Rejected(it.client_id, str(exc))]))
            except AuthError as exc:
                self._halt_on_auth(exc)
                self.need_reconcile = True
                return
            except ExchangeError as exc:
                self._exchange_failed(exc, f"{type(it).__name__} {it.client_id}")
                if queue:
                    log.info("%d more orders wait for the next reconcile", len(queue))
                self.need_reconcile = True
                return

    def _market_ended(self, cid: int, o: Order) -> list[st.Intent]:
        """A market order closed without (completely) filling: Expired for lack of liquidity, or refused."""
        assert self.state is not None
        if cid not in self.state.markets:
            return []  # its fills completed it after all
        log.warning("market order %s ended %s with %s of %s filled (%s)", cid, o.status.value, o.filled_qty, o.qty,
                    o.reason or "no reason given")
        self.store.set_status(cid, CANCELLED, note=(o.reason or o.status.value)[:200])
        return self.apply([st.Cancelled(cid)])

    def _same_order(self, row: OrderRow, o: Order) -> bool:
        """Is venue order ``o`` (found by our client id) the one this row recorded, not another state's
        order reusing the id? By the venue's order id once known; before that by what we asked for."""
        if not row.owns(o.symbol, o.exchange_id):
            return False
        if row.order_id and o.exchange_id:
            return True
        return (o.side.value == row.side and o.qty == row.qty
                and (row.price is None or o.price == row.price))

    async def _ours(self, cid: int) -> Optional[Order]:
        """The venue's view of our order ``cid``, or None if the venue has none that is ours."""
        row = self.store.order(cid)
        o = await self.ex.get_order(self.symbol, cid)
        return o if o is not None and row is not None and self._same_order(row, o) else None

    async def _settle(self, cid: int) -> list[st.Intent]:
        """An order we meant to cancel is already closed: learn how it ended."""
        out = await self.poll_fills()
        o = await self._ours(cid)
        if o is not None and o.status in (OrderStatus.cancelled, OrderStatus.rejected):
            self.store.set_status(cid, CANCELLED)
            out += self.apply([st.Cancelled(cid)])
        return out

    def fills_from(self) -> int:
        """Where reading fills starts: this state's beginning, never the account's whole history."""
        return max(0, int(self.store.get("started_ms") or 0) - START_SLACK_MS)

    async def poll_fills(self, lookback_ms: Optional[int] = None) -> list[st.Intent]:
        """New fills of ours since the last one we booked (a few seconds' overlap); ``lookback_ms``
        reads further back instead, for fills the venue shows late."""
        since = max(self.fills_from(), self.store.last_fill_ms() - FILL_OVERLAP_MS if lookback_ms is None
                    else _now_ms() - lookback_ms)
        new = [f for f in await self.ex.fills_since(self.symbol, since) if (f.symbol, f.trade_id) not in self._known]
        if not new:
            return []
        for f in new:
            self._known.add((f.symbol, f.trade_id))
            self._known_order.append((f.symbol, f.trade_id))
        while len(self._known_order) > 4096:
            self._known.discard(self._known_order.popleft())
        return self.apply([], new)

    # ------------------------------------------------------------ lifecycle
    async def open_state(self) -> None:
        """Restore the strategy, or start a fresh one; re-grid if the grid parameters changed."""
        market = await self.ex.market(self.symbol)
        self.price = await self.ex.last_price(self.symbol)
        taker = getattr(getattr(self.ex, "venue", None), "taker_fee", Decimal("0.001"))
        params = build_params(self.cfg, market, self.price, taker)
        snap = self.store.get("strategy")
        fp, old_fp = grid_fingerprint(self.cfg), self.store.get("grid")
        if old_fp:  # rows written before orders recorded their venue belong to the grid running then
            self.store.backfill_market(old_fp.get("exchange", "paper"), old_fp.get("symbol", self.symbol))
        budget = self.cfg.base_investment
        if snap is not None:
            self.state = st.GridState.from_dict(snap)
            if old_fp == fp:
                if self.store.get("started_ms") is None:  # saved before the start was recorded
                    self.store.put("started_ms", self.store.first_order_ms() or _now_ms())
                self.apply([_limits(self.cfg)])
                return
            log.warning("grid parameters changed since the last run: cancelling %d orders of the old grid on %s %s",
                        len(self.state.by_cid), (old_fp or {}).get("exchange"), (old_fp or {}).get("symbol"))
            await self.retire_old_grid(old_fp or fp)
            old = self.state
            if old.p.base == market.base:
                # the new grid keeps what the old one owned, adjusted by any change of the coins granted to it
                granted = Decimal((old_fp or {}).get("base_investment", "0"))
                budget = max(Decimal(0), old.inventory + self.cfg.base_investment - granted)
            elif old.inventory:
                log.warning("the old grid's %s %s stay on the account; the new grid trades %s", old.inventory,
                            old.p.base, market.base)
        else:
            old = None
            if budget:
                bal = await self.ex.balances()
                have = bal[market.base].available if market.base in bal else Decimal(0)
                if have < budget:
                    raise GridError(f"base_investment {budget} {market.base} is more than the {have} {market.base} "
                                    f"available on the account")
        fresh = st.init(params, budget, self.new_epoch())
        if old is not None:  # keep the books continuous
            fresh.realised, fresh.pairs, fresh.fills = old.realised, old.pairs, old.fills
        self.state = fresh
        with self.store.tx():
            self.store.put("strategy", fresh.to_dict())
            self.store.put("grid", fp)
            self.store.put("started_ms", _now_ms())
        log.info("new grid: %d levels %s..%s, %s %s per level, owns %s %s, client ids in epoch %d", self.cfg.levels,
                 params.buy[0], params.sell[-1], params.qty, market.base, budget, market.base, fresh.epoch)

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
                    self.store.set_status(r.client_id, o.status.value, o.filled_qty, order_id=o.exchange_id)
            await self.poll_fills()  # the old grid's last fills reach its books (parked: nothing is placed)
            left = [o.client_id for o in await self.ex.open_orders(old_sym)
                    if (r := self.store.order(o.client_id)) is not None and self._same_order(r, o)]
        finally:
            self.symbol = self.cfg.symbol
        if left:
            raise ExchangeError(f"orders {left} of the old grid are still open on {old_sym}; "
                                f"not starting the new grid until they are cancelled")

    async def refresh_rules(self) -> list[st.Intent]:
        """Read the market's rules (the adapter caches them 5 min) and tell the strategy when they change:
        levels outside the price band, and every order while the book refuses them, wait."""
        m = await self.ex.market(self.symbol)
        rules = st.Rules(m.price_band, m.state in LIMIT_STATES, m.state == "Open")
        if rules == self._rules:
            return []
        if self._rules is not None or rules != st.Rules():
            band = f"{m.price_band[0]}..{m.price_band[1]} x the last price" if m.price_band else "none"
            log.log(logging.INFO if m.state == "Open" else logging.WARNING,
                    "market %s: order book %s (%s), price band %s", self.symbol, m.state,
                    "limit and market orders" if rules.markets else "limit orders only" if rules.limits
                    else "no new orders", band)
        self._rules = rules
        return self.apply([rules])

    async def reconcile(self) -> None:
        """Compare with the venue (at start, after an error, and every ``reconcile_interval_s``);
        a failure is a health condition and is raised on."""
        try:
            await self._reconcile()
        except ExchangeError as exc:
            self.need_reconcile = True
            if not isinstance(exc, AuthError):
                self.health.set("reconcile", f"reconcile failing ({failure_kind(exc)})", time.monotonic())
            raise
        self.health.set("reconcile", None, time.monotonic())
        self._reconciled_at = time.monotonic()

    async def _reconcile(self) -> None:
        """Make the store and strategy agree with the venue after a restart or an exchange error, and
        on a cadence: orders cancelled behind the bot's back are placed again, orders filled behind
        its back and fills the venue showed late are booked, a market order that ended is settled.
        Only orders this instance recorded are adopted, and only if the venue's order is the one we
        placed (its order id, or side/qty/price before we heard the id); nothing else is touched."""
        assert self.state is not None
        pending_rows = self.store.orders(PENDING)  # before the rules and fills: those may add fresh intents
        todo = await self.refresh_rules()
        todo += await self.poll_fills(RECONCILE_LOOKBACK_MS)  # fills made while we were down, or shown late
        for row in pending_rows:
            o = await self._ours(row.client_id)
            if o is None:  # the call never reached the venue: send it now, same client id
                log.info("order %s was not placed before the restart; placing it now", row.client_id)
                if row.kind == "market":
                    todo.append(st.Market(row.client_id, st.Side(row.side), row.qty, "retry"))
                else:
                    todo.append(st.Place(row.client_id, st.Side(row.side), row.price, row.qty,  # type: ignore[arg-type]
                                         row.gap if row.gap is not None else -1))
            elif o.status is OrderStatus.open:
                log.info("order %s reached the venue before the restart; adopted", row.client_id)
                self.store.set_status(row.client_id, OPEN, order_id=o.exchange_id)
            elif o.status is OrderStatus.filled:
                log.info("order %s filled while we were down; adopted", row.client_id)
                self.store.set_status(row.client_id, FILLED, o.filled_qty, order_id=o.exchange_id)
            else:
                self.store.set_status(row.client_id, CANCELLED, order_id=o.exchange_id)
                todo += self.apply([st.Cancelled(row.client_id)])
        await self.execute(todo)
        pending = {r.client_id for r in self.store.orders(PENDING)}
        open_ids = set()
        for o in await self.ex.open_orders(self.symbol):
            row = self.store.order(o.client_id)
            if row is not None and self._same_order(row, o):
                open_ids.add(o.client_id)  # ours; an order that only shares our client id is not
        for cid in sorted(set(self.state.by_cid) - open_ids - pending):
            o = await self._ours(cid)
            if o is None or o.status in (OrderStatus.cancelled, OrderStatus.rejected):
                log.warning("order %s is no longer on the venue; the strategy is told", cid)
                self.store.set_status(cid, CANCELLED)
                await self.execute(self.apply([st.Cancelled(cid)]))
            elif o.status is OrderStatus.filled:
                await self.execute(await self.poll_fills())
        for cid in sorted(set(self.state.markets) - pending):  # a market order is settled, never left hanging
            o = await self._ours(cid)
            if o is None or o.status in (OrderStatus.cancelled, OrderStatus.rejected):
                await self.execute(await self.poll_fills())
                if o is None:
                    o = Order(cid, self.symbol, Side.buy, Decimal(0), getattr(self.state.markets.get(cid), "qty", 0),
                              status=OrderStatus.cancelled, reason="unknown to the venue")
                await self.execute(self._market_ended(cid, o))
            elif o.status is OrderStatus.filled:
                log.info("market order %s filled; waiting for the venue to show its fills", cid)
        known = sorted(open_ids - set(self.state.by_cid) - set(self.state.markets))
        if known:
            log.warning("orders %s are open on the venue but no longer part of the grid; cancelling", known)
            for c in known:
                try:
                    await self.ex.cancel(self.symbol, c)
                    self.store.set_status(c, CANCELLED)
                except OrderRejected:
                    pass
        if self.state.phase == st.STOPPED and self.state.by_cid:
            await self.execute([st.Cancel(c) for c in sorted(self.state.by_cid)])
        self.need_reconcile = False

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
        now = time.monotonic()
        if now - self._balances_at >= BALANCES_EVERY_S or (intents and getattr(self.ex, "venue", None)):
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

    # ------------------------------------------------------------ failures
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

    async def start_up(self) -> bool:
        """Open the state, reconcile and place the grid, retrying with backoff while the venue cannot be
        reached (or refuses the key). STATUS says "waiting for exchange ..."; after START_GRACE_S the
        bot reports READY=1 anyway, degraded (see the module docstring). False if told to stop first."""
        import asyncio

        assert self._stop_event is not None
        t0 = time.monotonic()
        delay = self.retry_base_s
        ready = False
        while not self.stopping:
            try:
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
        for sig in _early_signals:  # arrived while we were still loading
            self._request_stop(sig)
        if self.notifier.watchdog_interval:
            self.loop_timeout = min(self.loop_timeout, self.notifier.watchdog_interval)
        self.health.set("starting", "starting", time.monotonic())
        server = None
        if self.cfg.web_port:  # up before the exchange: /healthz answers 503 while the bot waits for it
            from .status_http import StatusServer

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

    def reload(self) -> None:
        """SIGHUP: thresholds and on_stop apply now; grid changes need a restart (they re-grid on start)."""
        try:
            new = load(self.name, self.cfg_dir)
        except (ConfigError, UsageError) as exc:
            log.warning("reload: keeping the running config: %s", exc)
            return
        old_d, new_d = self.cfg.model_dump(mode="json"), new.model_dump(mode="json")
        hard = sorted(k for k in new_d if k not in SOFT_FIELDS and new_d[k] != old_d[k])
        if hard:
            log.warning("reload: %s changed; restart the instance to apply (it re-grids on start); "
                        "applying only stop_loss/take_profit/on_trigger/on_stop", ", ".join(hard))
        soft = [k for k in SOFT_FIELDS if k != "schema_ref"]
        why = thresholds_fit(self.state.p, new.stop_loss, new.take_profit) if self.state is not None else []
        if why:
            soft = [k for k in soft if k not in ("stop_loss", "take_profit", "on_trigger")]
            log.warning("reload: keeping stop_loss=%s take_profit=%s on_trigger=%s: %s", self.cfg.stop_loss,
                        self.cfg.take_profit, self.cfg.on_trigger.value, "; ".join(why))
        self.cfg = self.cfg.model_copy(update={k: getattr(new, k) for k in soft})
        self.apply([_limits(self.cfg)])
        log.info("reload: applied (stop_loss=%s take_profit=%s on_trigger=%s on_stop=%s)", self.cfg.stop_loss,
                 self.cfg.take_profit, self.cfg.on_trigger.value, self.cfg.on_stop.value)

    # ------------------------------------------------------------ status
    def heartbeat(self) -> None:
        self.last_loop = time.time()
        now = self._progress = time.monotonic()
        line = self.status_line()
        due = self.notifier.watchdog_interval is not None and now - self._last_ping >= self.notifier.watchdog_interval
        if due or (line != self._last_status and now - self._last_ping >= 1.0):
            self.notifier.status(line, watchdog=self.notifier.watchdog_interval is not None)
            self._last_ping = now
            self._last_status = line
        self.publish()

    def publish(self, force: bool = False) -> None:
        """Figures for `gridbot list`/top/web: a small file, written only when due and changed."""
        pub = getattr(self, "_figures", None)
        if pub is None:
            pub = self._figures = figures.Publisher(
                self.name, self.cfg.exchange, figures.figures_dir(), lambda: self.store.get("equity_history"),
                lambda h: self.store.put("equity_history", h), self._recent_fills, log=log.warning)
        pub.tick(self.state, self.price, force, self.reasons())

    def _recent_fills(self, n: int) -> list[dict[str, Any]]:
        rows = self.store.db.execute("SELECT side, price, qty, fee, fee_asset, ts_ms FROM fills "
                                     "ORDER BY ts_ms DESC, trade_id DESC LIMIT ?", (n,)).fetchall()
        return [{"side": r[0], "price": r[1], "qty": r[2], "fee": r[3], "fee_asset": r[4], "time": r[5] / 1000}
                for r in rows]

    def reasons(self) -> list[str]:
        """Why the bot is not trading as configured (empty: it is); see gridbot/health.py."""
        now = time.monotonic()
        s = self.state
        h = self.health
        if s is not None:
            miss = st.missing(s)
            h.set("missing", f"{len(miss)} of {len(s.gaps)} levels without an order" if miss else None, now)
            lo, hi = s.p.buy[0], s.p.sell[-1]
            out = (s.phase == st.WAITING or (s.phase == st.RUNNING and self.price is not None
                                              and not lo <= self.price <= hi))
            h.set("range", f"not trading: price {self.price} outside the grid {lo}..{hi}" if out else None, now)
            h.set("stopped", f"grid stopped ({s.note})" if s.phase == st.STOPPED else None, now)
        out_ = h.reasons(now)
        if now - self._progress >= STALL_S:
            out_.insert(0, f"main loop stalled for {now - self._progress:.0f} s")
        return out_

    def kinds(self) -> list[str]:
        """The health conditions behind ``reasons()``, by their stable names (health.KINDS)."""
        now = time.monotonic()
        return (["stalled"] if now - self._progress >= STALL_S else []) + self.health.kinds(now)

    def healthy(self) -> bool:
        return not self.stopping and not self.reasons()

    def status_line(self) -> str:
        reasons = self.reasons()
        if self.state is None:
            return reasons[0] if reasons else "starting"
        line = figures.status_line(self.state, self.price)
        return f"DEGRADED: {'; '.join(reasons)} | {line}" if reasons else line

    def snapshot(self) -> dict[str, Any]:
        s = self.state
        reasons = self.reasons()
        health = {"ok": not reasons and not self.stopping, "reasons": reasons, "kinds": self.kinds()}
        if s is None:
            return {"instance": self.name, "symbol": self.symbol, "exchange": self.cfg.exchange, "phase": "starting",
                    "price": _s(self.price), "healthy": False, "degraded": True, "health": health,
                    "last_loop": round(self.last_loop, 3), "status": self.status_line()}
        total, unpaired = s.pnl(self.price) if self.price is not None else (Decimal(0), Decimal(0))
        bal = {a: {"available": str(b.available), "locked": str(b.locked)} for a, b in self._balances.items()}
        best_buy, best_sell = s.best_prices()
        return {
            "instance": self.name, "symbol": self.symbol, "exchange": self.cfg.exchange, "phase": s.phase,
            "price": None if self.price is None else str(self.price), "open_orders": len(s.by_cid),
            "fills": s.fills, "pairs": s.pairs, "realised_profit": str(s.realised),
            "unpaired_pnl": str(unpaired.quantize(Decimal("0.00000001"))), "total_pnl": str(total),
            "inventory_base": str(s.inventory), "best_buy": _s(best_buy), "best_sell": _s(best_sell),
            "qty_per_level": str(s.p.qty), "levels": len(s.p.buy) - 1, "balances": bal,
            "last_loop": round(self.last_loop, 3), "healthy": health["ok"], "note": s.note, "close": s.closing,
            "degraded": bool(reasons), "health": health, "missing_levels": len(st.missing(s)),
            "held_levels": len(s.held), "auth_halted": self.auth_halted,
            "status": self.status_line(),
        }


def _s(x: Optional[Decimal]) -> Optional[str]:
    return None if x is None else str(x)


def _now_ms() -> int:
    return int(time.time() * 1000)


def store_epochs(store: Store) -> Callable[[], int]:
    """Epochs for a paper instance: its simulated venue is its own account, so the store is the registry."""
    def new_epoch() -> int:
        epoch = int(store.get("epoch") or 0) % st.EPOCH_MAX + 1
        store.put("epoch", epoch)
        return epoch
    return new_epoch


def paper_venue(store: Store, cfg: GridConfig) -> tuple[Optional[dict[str, Any]], Optional[list[int]]]:
    """The saved simulated venue to restore, or None to build a new one from the config.

    Paper settings that changed since the venue was built (market rules, start price, balances, fees,
    symbol, price model) rebuild it: a simulation owns no real coins, so nothing is lost by starting it
    afresh, while keeping it would silently trade under the old rules. The old simulated grid is
    forgotten cleanly (its orders closed in the store, the strategy and venue snapshots dropped, so
    the next start is a fresh grid); returned too are the old venue's id counters, so the new venue's
    trade and order ids never repeat ids already recorded.
    """
    from .exchange import _paper_snapshot  # named fields, checked version (SnapshotError if unknown)

    want, saved, have = paper_fingerprint(cfg), store.get("paper"), store.get("paper_cfg")
    if saved is not None and have is None:  # saved before the fingerprint was kept: compare what the venue has
        pc = cfg.paper
        now = [cfg.symbol, cfg.base_asset, cfg.quote_asset, pc.tick_size, pc.step_size, pc.min_qty, cfg.fee_rate,
               pc.taker_fee]
        was = _paper_snapshot.rules(saved)
        names = ("symbol", "base", "quote", "tick_size", "step_size", "min_qty", "fee_rate", "taker_fee")
        changed = [n for n, a, b in zip(names, was, now) if a != b]
    else:
        changed = [] if saved is None else _diff(have, want)
    if not changed:
        if have != want:
            store.put("paper_cfg", want)
        return saved, None
    rows = store.orders(PENDING, OPEN)
    log.warning("paper settings changed (%s): rebuilding the simulated venue; the old simulated grid (%d orders) "
                "and its books are dropped", ", ".join(changed), len(rows))
    ids = _paper_snapshot.id_counters(saved)
    with store.tx():
        for r in rows:
            store.set_status(r.client_id, CANCELLED, note="paper venue rebuilt")
        for key in ("paper", "strategy", "grid", "started_ms", "profit"):
            store.delete(key)
        store.put("paper_cfg", want)
    return None, ids


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted names of the leaves that differ between two JSON-like dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}{k}.")]
    return [] if a == b else [path.rstrip(".").removeprefix("paper.") or "paper"]


async def _amain(name: str, cfg: GridConfig, state_dir: Path, cfg_dir: Path, claim: "Claim") -> int:
    from .account import check_fresh_start, state_is_empty
    from .exchange.factory import open_exchange

    try:  # held until exit: one bot per state directory
        lock = _statelock.acquire(state_dir, name, by_hand="STATE_DIRECTORY" not in os.environ)
    except OSError as exc:
        raise StoreError(f"cannot lock {state_dir}: {exc.strerror or exc}") from None
    store = Store.open(state_dir)
    try:
        # GRIDBOT_PAPER_LATENCY_MS: simulated round trip of paper calls (realism; crash tests use it)
        latency = float(os.environ.get("GRIDBOT_PAPER_LATENCY_MS", "0") or 0) / 1000
        saved, ids = paper_venue(store, cfg) if cfg.exchange == "paper" else (None, None)
        ex = open_exchange(cfg, state_dir, saved=saved, save=lambda d: store.put("paper", d), latency_s=latency)
        if ids:  # a rebuilt venue continues the old one's trade and order numbering
            ex.venue.continue_ids(*ids)  # type: ignore[attr-defined]
        if claim.live and state_is_empty(store):
            try:  # a lost state never starts silently; a reset's old orders are cancelled first
                if not await _fresh_start_waiting(claim, ex, check_fresh_start):
                    await ex.close()
                    return EX_OK  # SIGTERM while waiting for the exchange
            except BaseException:
                await ex.close()
                raise
            # the epoch is reserved for this state from now on: a stop before the grid is written must
            # not make the next start look like a lost state (the registry already lists the epoch)
            store.put(RESERVED_EPOCH, claim.reserve_epoch())
        # paper: the simulated venue is the instance's own account; live: the account's epoch registry
        new_epoch = claim.new_epoch if claim.live else store_epochs(store)
        bot = Bot(name, cfg, store, ex, Notifier(), cfg_dir, new_epoch)
        return await run_guarded(bot)
    finally:
        store.close()
        os.close(lock)


async def run_guarded(bot: Bot) -> int:
    """``bot.run()``; if the state stops being writable (disk full, read-only), no further order can
    be recorded first, so none is placed: apply on_stop straight through the venue and fail."""
    try:
        return await bot.run()
    except (StoreError, sqlite3.Error) as exc:
        from ._failsafe import stop_without_store

        bot.stopping = True
        bot.notifier.stopping("state not writable; stopping")
        done = await stop_without_store(bot)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"{first}; stopped placing orders, {done}") from None


_early_signals: list[int] = []
RESERVED_EPOCH = "reserved_epoch"  # store key: see account.state_is_empty


async def _fresh_start_waiting(claim: "Claim", ex: "Exchange", check: Callable[..., Any]) -> bool:
    """The account's fresh-start check, retried with backoff while the exchange cannot be reached (as
    the bot's own start-up does: STATUS=waiting for exchange, one line per kind). False on SIGTERM."""
    import asyncio

    delay, logged, notifier = 1.0, set(), Notifier()
    while True:
        try:
            await check(claim, ex)
            return True
        except ExchangeError as exc:
            kind = failure_kind(exc)
            if kind not in logged:
                logged.add(kind)
                log.error("exchange %s (fresh-start check): %s; retrying", kind, exc)
            notifier.status(f"waiting for exchange: {kind} (retrying in {delay:.0f} s)",
                            watchdog=notifier.watchdog_interval is not None)
        for _ in range(int(delay * 10)):
            if _early_signals:
                log.info("received %s while waiting for the exchange: stopping", signal.Signals(_early_signals[0]).name)
                return False
            await asyncio.sleep(0.1)
        delay = min(WAIT_MAX_S, delay * 2)


def main(name: str, user: bool = False) -> int:
    """Run instance ``name`` until SIGTERM; return the process exit code."""
    # until the loop owns the signals: remember a stop, ignore a reload (the config is read fresh anyway)
    signal.signal(signal.SIGTERM, lambda sig, _: _early_signals.append(sig))
    signal.signal(signal.SIGINT, lambda sig, _: _early_signals.append(sig))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(logging.DEBUG if os.environ.get("GRIDBOT_DEBUG") else logging.INFO)
    cfg_dir = config_dir()
    try:
        try:
            cfg = load(name, cfg_dir)
        except ConfigError:  # an editor's truncate-then-write caught mid-way: look once more
            time.sleep(1.0)
            cfg = load(name, cfg_dir)
    except (ConfigError, UsageError) as exc:
        log.error("not starting: %s", exc)
        return EX_CONFIG
    if cfg.exchange != "paper":  # it will hold API keys: never in a core dump
        from ._nodump import forbid_core_dumps

        forbid_core_dumps()
    if cfg.exchange == "paper":  # asyncio imports ssl eagerly; a paper bot never speaks TLS
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    import asyncio

    from .account import AccountError, accounts_root, claim

    state_dir = state_dir_for(name, user)
    try:  # the account's rules, before anything is opened: one symbol per account, its rate budget
        held = claim(name, cfg, accounts_root(state_dir.parent))
        try:
            return asyncio.run(_amain(name, cfg, state_dir, cfg_dir, held))
        finally:
            held.release()
    except _statelock.StateLocked as exc:
        log.error("not starting: %s", exc)
        return EX_FAIL
    except AccountError as exc:
        log.error("not starting: %s", exc)
        return EX_FAIL if exc.transient else EX_CONFIG
    except SnapshotError as exc:  # saved by another gridbot version: refused, never guessed at
        log.error("not starting: %s (state %s); run the gridbot that wrote it, or start over with "
                  "`gridbot reset %s`", exc, state_dir / DB_NAME, name)
        return EX_CONFIG
    except (GridError, CredentialsError, ConfigError) as exc:
        log.error("not starting: %s", exc)
        return EX_CONFIG
    except (StoreError, sqlite3.Error) as exc:  # read-only or full state dir: one line, not a traceback
        log.error("state directory %s unusable: %s", state_dir, str(exc).splitlines()[0] if str(exc) else exc)
        return EX_FAIL
    except KeyboardInterrupt:
        return EX_OK
    except Exception:
        log.exception("crashed")
        return EX_FAIL


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m gridbot.runner NAME", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
