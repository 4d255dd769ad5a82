"""``BotBase``: the state every part of the bot shares, created in one ``__init__``.

Each part (``loop``, ``startup``, ``reconcile``, ``orders``, ``persist``, ``failures``, ``reload``,
``status``) is a mixin over this class, so a reader finds the whole state of a running bot, and its
tunable timings, in one place; ``core.Bot`` joins the parts. Imports nothing from the parts.
"""
from __future__ import annotations

import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from .. import strategy as st
from ..health import Health

if TYPE_CHECKING:
    import asyncio

    from .. import figures
    from ..exchange.base import Exchange
    from ..models import GridConfig
    from ..notify import Notifier
    from ..store import Store

HOLD_BASE_S, HOLD_MAX_S = 5.0, 300.0  # a refused level is retried after 5 s, 10 s, 20 s ... at most 5 min
REFILL_MAX_S = 1800.0  # idle levels: refilled at a reconcile, again after 1, 2, 4 ... reconcile intervals, <= 30 min
AUTH_RETRY_S = 60.0  # keys refused: try them again this often (one signed request)
START_GRACE_S = 20.0  # exchange unreachable at start: READY=1 (degraded) after this, well inside TimeoutStartSec


class BotBase:
    """One instance's state: config, store, exchange, strategy state, and the loop's bookkeeping."""

    def __init__(self, name: str, cfg: "GridConfig", store: "Store", exchange: "Exchange", notifier: "Notifier",
                 cfg_dir: Path, new_epoch: Callable[[], int],
                 fresh_start: Optional[Callable[[], Awaitable[None]]] = None) -> None:
        self.name, self.cfg, self.store, self.ex, self.notifier = name, cfg, store, exchange, notifier
        self.cfg_dir = cfg_dir
        self.new_epoch = new_epoch  # the account's epoch registry: client ids no other state can produce
        # a live instance's empty state: the account's fresh-start check (main.fresh_start_step), run by
        # start_up before the first open_state and retried like any exchange call; None once it succeeded
        self.fresh_start = fresh_start
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
        self._figures: Optional["figures.Publisher"] = None  # made at the first publish
        self._stop_event: Optional["asyncio.Event"] = None
        self._reload_requested = False
        self.health = Health()
        self.started = False  # start-up reached the venue and reconciled: on_stop applies at shutdown
        self.hold_base_s, self.hold_max_s = HOLD_BASE_S, HOLD_MAX_S
        self._held_due: dict[int, float] = {}  # held gap -> monotonic time of its release
        self.refill_max_s = REFILL_MAX_S
        self._refill_due = 0.0  # monotonic time of the next Refill while gaps are idle
        self._refills = 0  # Refills sent since no gap was idle (the backoff's exponent)
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
