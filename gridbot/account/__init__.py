"""The rules of one exchange account, enforced by the bot process itself when it starts.

Several live instances usually share one Backpack (sub)account. Whatever starts a bot (``gridbot
start``, ``systemctl start``, boot autostart, an automatic restart) runs ``gridbot run NAME``, so
the checks live here, called by the runner before it opens the exchange; the CLI's
``fleet.check_clashes`` stays as an early, friendlier warning but is no longer the guard.

Why a lock directory and not an ``ExecStartPre=`` check: a check that runs and exits can race a
second start (both see "free", both start), and it cannot know what is *running* now, only what
is configured. A ``flock`` held by the bot for its whole life is exact: the kernel drops it when
the process dies, however it dies (kill -9, OOM, a crash), so there is no stale-lock cleanup and
no pid guessing; a lock that can be taken is stale by definition.

Layout, one directory per account (``accounts_root``)::

    /var/lib/gridbot/.accounts/            root:gridbot 2770 (tmpfiles.d); user mode and tests: see
      backpack-default/                    accounts_root(); one directory per (exchange, account)
        .mutex                             serialises claims and registry updates (held for ms)
        SOL_USDC.lock                      flock(LOCK_EX) held by the instance trading SOL_USDC;
                                           content: holder name, pid, poll_interval_s (JSON)
        epochs.json                        the epoch registry (written atomically, under .mutex)

``.accounts`` starts with a dot because instance names cannot: it can never be an instance's
``StateDirectory=gridbot/%i``. Files are made group read-write explicitly (the unit runs with
``UMask=0077``) and the directory is setgid ``gridbot``, so instances running under different
(dynamic) users share it through their primary group ``gridbot``. That group is the unit's
``Group=``, not ``SupplementaryGroups=``, which would cost the sandbox 0.1 of its score.

Account key: (exchange, ``backpack.account``), as ``fleet.check_clashes``. Only live instances take
part; each paper instance has its own simulated account (``Claim.live`` is False, nothing is
touched).

**Claim** (``claim()``): under ``.mutex``, take ``<symbol>.lock`` without blocking (held: refuse,
naming the holder), write who holds it, then add up the polling of every live instance holding a
lock on the account plus ours, and refuse over ``POLL_SHARE`` of the account's shared limit.

**Epochs** (``Claim.new_epoch``): client ids are ``epoch << 18 | counter`` (u32). Epochs
1..16383 are handed out once per account, never reused, and recorded per instance name, so no
instance (nor the same name rebuilt from a fresh state) can produce another's client ids. That
allows 16383 fresh states per account, each with 2^18 = 262144 client ids.

**Lost state** (``check_fresh_start``): a live instance whose state is missing or empty refuses to
start while the registry shows this name was issued epochs before (it had state), or while the
venue shows open orders on its symbol from one of its epochs: those orders and their fills belong
to a state that is gone. ``gridbot reset NAME`` (``mark_reset``) retires the name's epochs and
leaves a marker; the next start then cancels the open orders on the recorded symbol carrying a
client id from a retired epoch, clears the marker and starts clean. A fresh live state reserves
its epoch before it trades (``reserve_epoch``), so a kill -9 before its first snapshot errs on the
safe side: the next start refuses, and ``gridbot reset`` clears it. The cancel happens in the bot
and not in the CLI because only the bot has the API keys: systemd decrypts them into the
sandboxed unit alone, and a second key-handling path (root's CLI decrypting credentials) would be
one more place for them to leak; it also lets reset work while the venue is unreachable.

Modules: ``budget`` (the rate figures), ``_files`` (directory, mutex, atomic JSON), ``epochs``
(the registry, reset, a fresh live start), ``claim`` (the symbol lock and the budget check).
"""
from __future__ import annotations

from ..paths import ACCOUNTS_DIRNAME, accounts_root
from ._files import (DIR_MODE, FILE_MODE, MUTEX, MUTEX_WAIT_S, REGISTRY, AccountError, account_dir, account_key,
                     describe)
from .budget import (ACCOUNT_REQUESTS_PER_MIN, BALANCE_REQUESTS_PER_MIN, IDLE_WAKE_S, MARKETS_AND_CLOCK_PER_MIN,
                     POLL_SHARE, RECONCILE_INTERVAL_S, REQUESTS_PER_POLL, REQUESTS_PER_RECONCILE, poll_budget,
                     requests_per_min)
from .claim import Claim, claim, holder
from .epochs import (EPOCH_SHIFT, MAX_EPOCH, PAPER_EPOCH, check_fresh_start, epoch_of, history, lost_state_problem,
                     mark_reset, state_is_empty)

__all__ = [
    "ACCOUNTS_DIRNAME", "accounts_root", "DIR_MODE", "FILE_MODE", "MUTEX", "MUTEX_WAIT_S", "REGISTRY", "AccountError",
    "account_dir", "account_key", "describe", "ACCOUNT_REQUESTS_PER_MIN", "BALANCE_REQUESTS_PER_MIN", "IDLE_WAKE_S",
    "MARKETS_AND_CLOCK_PER_MIN", "POLL_SHARE", "RECONCILE_INTERVAL_S", "REQUESTS_PER_POLL", "REQUESTS_PER_RECONCILE",
    "poll_budget", "requests_per_min", "Claim", "claim", "holder", "EPOCH_SHIFT", "MAX_EPOCH", "PAPER_EPOCH",
    "check_fresh_start", "epoch_of", "history", "lost_state_problem", "mark_reset", "state_is_empty",
]
