"""The grid as a pure state machine: ``step(state, event) -> (state, intents)``. No I/O, no clock.

Slots follow bbgo's twin orders: gap ``k`` (between lines k and k+1) holds either a BUY at line k or
a SELL at line k+1, never both. A completed buy flips its gap to a sell one line up for the filled
quantity net of base fees; a completed sell flips it back to a buy of the configured size. Partial
fills wait for completion (bbgo/hummingbot), so a counter-order is never smaller than needed.

Two gaps share each line (gap k-1 sells at line k, gap k buys there); a flip that would put a buy
and a sell on the same line is held back ("wanted") until the neighbour moves. So is an order that
would cross the last price (post-only), one outside the venue's price band, and every order while
the book takes no limit orders (``Rules``); wanted orders are retried on the next tick. Ticks cost
O(1): compare with stop-loss/take-profit and, only if something is wanted, retry.

Lost levels come back (issue 9): a level the venue refused or closed at once (post-only
``Expired``) is *held*; the runner releases it after a backoff (``Release``), so it is retried
later, never given up. A level cancelled behind the bot's back is placed again at once. A market
order that ends without (fully) filling is a cancellation: the rebalance places what the base
allows, and the sells it could not cover stay *idle*, as does a gap whose filled buy nets below the
minimum order. The runner sends ``Refill`` at its reconciles (with backoff) while any gap is idle:
idle gaps get what a grid placed now would give them, buys at once and sells from the grid's free
base, and ONE market buy (``refill``, sized like the rebalance) covers the sells still short; its
end places them, and whatever it could not buy waits for the next ``Refill``. ``missing(s)`` lists
the levels without a live order, for status and health.

Notes: every noteworthy change sets ``state.note`` (text, shown in STATUS) and ``state.notice``, a
typed ``Notice`` (level, kind) the runner logs by; it never searches the text.

Modules: ``_events`` (events, intents, notices), ``_state`` (phases, gaps, market legs, the books,
the versioned snapshot), ``_place`` (placing the grid), ``_fills`` (orders ending, the trigger and
its close), ``_step`` (``init``, ``step``, client ids). Everything is re-exported here.

``step`` mutates and returns ``state`` for speed (a million ticks a second); use
``GridState.from_dict(s.to_dict())`` to keep an old copy.

Client ids are ``epoch << 18 | counter``: the epoch (14 bits, 1..16383) is handed out per account by
the runner's registry, so no two states on one account (other instances, or this name rebuilt with
fresh state) can produce the same id; the counter (18 bits) numbers this state's orders. The machine
never picks an epoch itself (that needs I/O): it raises if the counter runs out, and the runner feeds
``NewEpoch`` before that can happen (``needs_epoch``).

Coins: the grid owns only its budget, ``base_budget`` (config ``base_investment``) plus what its own
fills moved; the account's other coins are never counted, sold or closed.
"""
from __future__ import annotations

from ..records import Side
from ._events import (
    Cancel, Cancelled, CloseRetry, Event, Filled, Intent, Kind, Level, Market, NewEpoch, Notice, Place, Refill,
    Rejected, Release, Resume, Rules, SetLimits, Stop, Tick,
)
from ._state import (
    BUY, COUNTER_BITS, COUNTER_MAX, EPOCH_HEADROOM, EPOCH_MAX, MAX_REJECTS, PARKED, REBALANCING, RETIRED_ORDERS,
    RUNNING, SEEN_TRADES, SELL, SNAPSHOT_VERSION, STOPPED, U32, WAITING, ZERO, Books, Gap, GridState, MarketLeg,
    Params, Phase,
)
from ._step import client_id, init, missing, needs_epoch, step

__all__ = [
    "Side", "Cancel", "Cancelled", "CloseRetry", "Event", "Filled", "Intent", "Kind", "Level", "Market", "NewEpoch",
    "Notice", "Place", "Refill", "Rejected", "Release", "Resume", "Rules", "SetLimits", "Stop", "Tick",
    "BUY", "COUNTER_BITS", "COUNTER_MAX", "EPOCH_HEADROOM", "EPOCH_MAX", "MAX_REJECTS", "PARKED", "REBALANCING",
    "RETIRED_ORDERS", "RUNNING", "SEEN_TRADES", "SELL", "SNAPSHOT_VERSION", "STOPPED", "U32", "WAITING", "ZERO",
    "Books", "Gap", "GridState", "MarketLeg", "Params", "Phase",
    "client_id", "init", "missing", "needs_epoch", "step",
]
