"""The account's shared rate limit and what one live bot polls: the one set of figures, used by the
bot's own claim (``claim``) and by the CLI's early clash check (``fleet.check_clashes``)."""
from __future__ import annotations


# Backpack allows ~2000 requests/min per subaccount, shared by every instance on it. An idle live
# bot asks for fills and the price once per wake-up (REQUESTS_PER_POLL), and its balances every
# BALANCES_EVERY_S (runner). It wakes every poll_interval_s but at least every IDLE_WAKE_S (the
# runner's loop timeout, which keeps the watchdog fed), so a longer poll_interval_s saves nothing.
# Polling may use POLL_SHARE of the limit; the rest is kept free for orders and cancels.
ACCOUNT_REQUESTS_PER_MIN = 2000


POLL_SHARE = 0.75


REQUESTS_PER_POLL = 2


IDLE_WAKE_S = 5.0


BALANCE_REQUESTS_PER_MIN = 2


# and, every reconcile_interval_s, its open orders and an hour of fills (issue 9); the markets every
# 5 minutes (price bands, book state) and the clock every 10
REQUESTS_PER_RECONCILE = 2


RECONCILE_INTERVAL_S = 30.0  # GridConfig's default, for a holder file written before the field existed


MARKETS_AND_CLOCK_PER_MIN = 0.3



def requests_per_min(poll_interval_s: float, reconcile_interval_s: float = RECONCILE_INTERVAL_S) -> float:
    """Requests one idle live instance makes per minute (see the figures above)."""
    return (REQUESTS_PER_POLL * 60 / min(poll_interval_s, IDLE_WAKE_S) + BALANCE_REQUESTS_PER_MIN
            + REQUESTS_PER_RECONCILE * 60 / reconcile_interval_s + MARKETS_AND_CLOCK_PER_MIN)



def poll_budget() -> float:
    return ACCOUNT_REQUESTS_PER_MIN * POLL_SHARE
