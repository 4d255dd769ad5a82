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
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .errors import GridbotError
from .paths import accounts_root, write_atomic  # noqa: F401  (accounts_root re-exported)

if TYPE_CHECKING:
    from .exchange.base import Exchange
    from .models import GridConfig

log = logging.getLogger("gridbot")

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

EPOCH_SHIFT = 18  # client id = epoch << 18 | counter: 14 bits of epoch, 18 of counter, a u32
MAX_EPOCH = (1 << (32 - EPOCH_SHIFT)) - 1  # 16383; epoch 0 is never issued (ids of older states)
PAPER_EPOCH = 1  # each paper instance is alone on its simulated account

REGISTRY = "epochs.json"
MUTEX = ".mutex"
MUTEX_WAIT_S = 10.0
FILE_MODE = 0o660
DIR_MODE = 0o770  # plus setgid, inherited from the accounts directory (tmpfiles.d: 2770 root:gridbot)


class AccountError(GridbotError):
    """An account rule refuses the start (or the registry is unusable). ``transient``: may heal by
    retrying (a busy mutex), so the runner exits 1 (restart) instead of 78."""

    exit_code = 6

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def requests_per_min(poll_interval_s: float, reconcile_interval_s: float = RECONCILE_INTERVAL_S) -> float:
    """Requests one idle live instance makes per minute (see the figures above)."""
    return (REQUESTS_PER_POLL * 60 / min(poll_interval_s, IDLE_WAKE_S) + BALANCE_REQUESTS_PER_MIN
            + REQUESTS_PER_RECONCILE * 60 / reconcile_interval_s + MARKETS_AND_CLOCK_PER_MIN)


def poll_budget() -> float:
    return ACCOUNT_REQUESTS_PER_MIN * POLL_SHARE


def epoch_of(client_id: int) -> int:
    return client_id >> EPOCH_SHIFT


def account_key(cfg: "GridConfig") -> tuple[str, str]:
    return cfg.exchange, cfg.backpack.account


def account_dir(root: Path, exchange: str, account: str) -> Path:
    return Path(root) / f"{exchange}-{account}"  # the label never holds '/' (models.BackpackConfig)


def describe(exchange: str, account: str) -> str:
    return f"{exchange} account '{account}'"


# -- files --------------------------------------------------------------------------------------
def _mkdir(d: Path) -> None:
    """A group-shared directory despite the unit's UMask=0077. Its setgid bit comes from the parent
    (the kernel copies it): asking for S_ISGID ourselves is refused under RestrictSUIDSGID=."""
    old = os.umask(0o007)  # only the claim, before the event loop and any thread, creates directories
    try:
        d.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        pass
    finally:
        os.umask(old)


def _ensure_dir(d: Path) -> None:
    try:
        _mkdir(d)
    except OSError as exc:
        raise AccountError(f"cannot create the account directory {d}: {exc.strerror}") from None


def _open_rw(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # the umask took group rw away; another instance needs it
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def _mutex(d: Path) -> Iterator[None]:
    """The account's short critical section (claims, registry updates)."""
    try:
        fd = _open_rw(d / MUTEX)
    except OSError as exc:
        raise AccountError(f"cannot use the account directory {d}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + MUTEX_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AccountError(f"{d / MUTEX} stayed locked for {MUTEX_WAIT_S:.0f}s; try again",
                                       transient=True) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise AccountError(f"{path} is not valid JSON; it records which client ids each instance used: "
                           f"restore it from a backup rather than deleting it") from None


def _write_atomic(path: Path, data: Any) -> None:
    try:
        write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), FILE_MODE)
    except OSError as exc:
        raise AccountError(f"cannot write {path}: {exc.strerror}") from None


# -- the epoch registry -------------------------------------------------------------------------
def _load_registry(d: Path) -> dict[str, Any]:
    data = _read_json(d / REGISTRY)
    if data is None:
        return {"version": 1, "next_epoch": 1, "instances": {}}
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict) \
            or not isinstance(data.get("next_epoch"), int):
        raise AccountError(f"{d / REGISTRY} is not an epoch registry; restore it from a backup")
    return data


def _entry(reg: dict[str, Any], name: str) -> dict[str, Any]:
    e = reg["instances"].setdefault(name, {})
    e.setdefault("epochs", [])
    e.setdefault("retired", [])
    return e


@contextmanager
def _registry(d: Path) -> Iterator[dict[str, Any]]:
    """The registry under the account mutex; written back (atomically) if the block changed it."""
    with _mutex(d):
        reg = _load_registry(d)
        before = json.dumps(reg, sort_keys=True)
        yield reg
        if json.dumps(reg, sort_keys=True) != before:
            _write_atomic(d / REGISTRY, reg)


def history(root: Path, exchange: str, account: str, name: str) -> dict[str, Any]:
    """This name's registry entry (epochs, retired, cancel_on_start), empty if none; no writes."""
    d = account_dir(root, exchange, account)
    data = _load_registry(d) if d.is_dir() else {"instances": {}}
    e = data["instances"].get(name) or {}
    return {"epochs": list(e.get("epochs", [])), "retired": list(e.get("retired", [])),
            "cancel_on_start": e.get("cancel_on_start")}


def mark_reset(root: Path, exchange: str, account: str, name: str, symbol: str) -> list[int]:
    """``gridbot reset NAME``: retire the name's epochs (never issued again, so never confused with
    a new state's ids) and ask its next start to cancel their open orders on ``symbol``.
    Returns the epochs retired by this call (none: nothing recorded, nothing changed)."""
    d = account_dir(root, exchange, account)
    if not d.is_dir():
        return []
    with _registry(d) as reg:
        e = reg["instances"].get(name)
        if not e or not e.get("epochs"):
            return []
        retired = sorted(e["epochs"])
        e["retired"] = sorted(set(e.get("retired", [])) | set(retired))
        e["epochs"] = []
        old = e.get("cancel_on_start") or {}
        pending = sorted(set(old.get("epochs", [])) | set(retired)) if old.get("symbol") == symbol else retired
        if old and old.get("symbol") != symbol:
            log.warning("%s: an earlier reset's cancels on %s are superseded", name, old.get("symbol"))
        e["cancel_on_start"] = {"symbol": symbol, "epochs": pending}
        return retired


# -- holding a symbol ---------------------------------------------------------------------------
def _holder(path: Path) -> Optional[dict[str, Any]]:
    """The content of a lock file whose lock is held now; None if nobody holds it (stale)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: read who holds it
        else:
            return None  # we could take it: nobody holds it
        raw = os.pread(fd, 4096, 0)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def holder(root: Path, exchange: str, account: str, symbol: str) -> Optional[dict[str, Any]]:
    """Who holds ``symbol`` on the account now (name, pid, poll_interval_s), or None."""
    return _holder(account_dir(root, exchange, account) / f"{symbol}.lock")


def _who(h: dict[str, Any]) -> str:
    return f"{h.get('name', '?')} (pid {h.get('pid', '?')})"


@dataclass
class Claim:
    """What an instance holds on its account for as long as it runs. ``release()`` (or process
    exit) lets go. A paper instance's claim holds nothing."""

    name: str
    live: bool
    exchange: str = "paper"
    account: str = ""
    symbol: str = ""
    dir: Optional[Path] = None
    _fd: Optional[int] = field(default=None, repr=False)
    _reserved: Optional[int] = field(default=None, repr=False)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the file stays: a lock that can be taken is stale
            self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def new_epoch(self) -> int:
        """A fresh epoch for this instance's client ids, unique on the account and recorded."""
        if not self.live:
            return PAPER_EPOCH
        if self._reserved is not None:
            e, self._reserved = self._reserved, None
            return e
        assert self.dir is not None
        with _registry(self.dir) as reg:
            e = reg["next_epoch"]
            if e > MAX_EPOCH:
                raise AccountError(f"{describe(self.exchange, self.account)} has used all {MAX_EPOCH} client-id "
                                   f"epochs (see {self.dir / REGISTRY}); use another subaccount")
            reg["next_epoch"] = e + 1
            _entry(reg, self.name)["epochs"].append(e)
            return e

    def reserve_epoch(self) -> int:
        """Issue (and record) the epoch of a fresh state now, before anything is traded with it;
        the next ``new_epoch()`` returns it. The registry then knows this name has state."""
        if self._reserved is None:
            self._reserved = self.new_epoch()
        return self._reserved

    def history(self) -> dict[str, Any]:
        assert self.dir is not None
        return history(self.dir.parent, self.exchange, self.account, self.name)

    def clear_cancel_marker(self) -> None:
        assert self.dir is not None
        with _registry(self.dir) as reg:
            _entry(reg, self.name).pop("cancel_on_start", None)


def claim(name: str, cfg: "GridConfig", root: Path) -> Claim:
    """Hold ``cfg.symbol`` on the instance's account, within the account's rate budget, or raise
    AccountError with one line naming whoever is in the way. Paper instances: a no-op claim."""
    if cfg.exchange == "paper":
        return Claim(name, live=False)
    exchange, account = account_key(cfg)
    d = account_dir(root, exchange, account)
    where = describe(exchange, account)
    try:
        _mkdir(Path(root))  # user mode, tests; the system's comes from tmpfiles.d
    except OSError as exc:
        raise AccountError(f"the accounts directory {root} is missing and cannot be created ({exc.strerror}); "
                           f"packaging's tmpfiles.d makes it: run `sudo ./packaging/install.sh` again") from None
    _ensure_dir(d)
    lock = d / f"{cfg.symbol}.lock"
    me = {"name": name, "pid": os.getpid(), "symbol": cfg.symbol, "poll_interval_s": cfg.backpack.poll_interval_s,
          "reconcile_interval_s": cfg.reconcile_interval_s,
          "requests_per_min": round(requests_per_min(cfg.backpack.poll_interval_s, cfg.reconcile_interval_s), 1),
          "since": int(time.time())}
    with _mutex(d):
        try:
            fd = _open_rw(lock)
        except OSError as exc:
            raise AccountError(f"cannot use {lock}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = _holder(lock) or {}
            raise AccountError(f"{cfg.symbol} on {where} is already traded by instance {_who(h)}: "
                               f"two instances may not trade one symbol on one account") from None
        except OSError as exc:
            os.close(fd)
            raise AccountError(f"cannot lock {lock}: {os.strerror(exc.errno or errno.EIO)}") from None
        try:
            others = []
            for p in sorted(d.glob("*.lock")):
                if p.name != lock.name:
                    h = _holder(p)
                    if h is not None:
                        others.append(h)
            total = requests_per_min(cfg.backpack.poll_interval_s, cfg.reconcile_interval_s)
            for h in others:
                try:
                    total += requests_per_min(float(h["poll_interval_s"]),
                                              float(h.get("reconcile_interval_s", RECONCILE_INTERVAL_S)))
                except (KeyError, TypeError, ValueError, ZeroDivisionError):
                    total += requests_per_min(IDLE_WAKE_S / 2)  # unreadable holder: count it, conservatively
            if total > poll_budget():
                names = ", ".join(str(h.get("name", "?")) for h in others)
                raise AccountError(
                    f"{where} is shared by running instances ({names}); with {name} they would poll "
                    f"~{total:.0f} requests/min, over {poll_budget():.0f} of the {ACCOUNT_REQUESTS_PER_MIN}/min "
                    f"the account allows: raise backpack.poll_interval_s or use another subaccount")
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me, sort_keys=True) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
    return Claim(name, live=True, exchange=exchange, account=account, symbol=cfg.symbol, dir=d, _fd=fd)


# -- a live start from an empty state -----------------------------------------------------------
def state_is_empty(store: Any) -> bool:
    """No strategy snapshot, no reserved epoch, no order and no fill: a state that is missing or was
    emptied (a state whose epoch was reserved but which stopped before its grid existed is not)."""
    return (store.get("strategy") is None and store.get("reserved_epoch") is None  # runner.RESERVED_EPOCH
            and not store.orders() and not store.fill_count())


def lost_state_problem(name: str, entry: dict[str, Any], open_client_ids: Optional[list[int]]) -> Optional[str]:
    """Why a live instance with an empty state must not start (None: it may). Pure.

    ``entry``: its registry history; ``open_client_ids``: client ids of the open orders on its
    symbol (None when not looked up: no epoch was ever recorded for it).
    """
    if entry["epochs"]:
        return (f"the state of {name} is missing or empty, but it traded before with client-id epochs "
                f"{_epochs(entry['epochs'])}: its orders and fills would be lost or adopted blindly; "
                f"run `gridbot reset {name}` to start it clean")
    mine = set(entry["retired"])
    if open_client_ids and not entry.get("cancel_on_start"):
        stray = sorted(c for c in open_client_ids if epoch_of(c) in mine)
        if stray:
            return (f"the state of {name} is missing or empty, but {len(stray)} of its earlier orders are still "
                    f"open (client ids {', '.join(map(str, stray[:5]))}{'…' if len(stray) > 5 else ''}); "
                    f"run `gridbot reset {name}` to cancel them and start clean")
    return None


def _epochs(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs[:8])) + ("…" if len(epochs) > 8 else "")


async def check_fresh_start(claim: Claim, ex: "Exchange") -> None:
    """A live instance starting from an empty state: refuse if that state had a past (AccountError),
    else carry out a pending reset (cancel the old epochs' open orders), then reserve the new
    state's epoch so the registry knows this name has state from now on."""
    from .errors import OrderRejected

    if not claim.live:
        return
    entry = claim.history()
    marker = entry.get("cancel_on_start")
    open_ids = None
    if not entry["epochs"] and entry["retired"] and not marker:
        open_ids = [o.client_id for o in await ex.open_orders(claim.symbol)]
    problem = lost_state_problem(claim.name, entry, open_ids)
    if problem:
        raise AccountError(problem)
    if marker:
        symbol, epochs = marker["symbol"], set(marker["epochs"])
        old = [o for o in await ex.open_orders(symbol) if epoch_of(o.client_id) in epochs]
        for o in old:
            try:
                await ex.cancel(symbol, o.client_id)
            except OrderRejected:
                pass  # gone meanwhile (filled or cancelled)
        log.warning("reset: cancelled %d open order(s) of the earlier state on %s (epochs %s); starting clean",
                    len(old), symbol, _epochs(sorted(epochs)))
        claim.clear_cancel_marker()
    claim.reserve_epoch()
