"""Holding a symbol on an account: a ``flock`` held for the bot's whole life (the kernel drops it
however the process dies), the holder's file naming who holds it, and the rate budget checked
against every other holder's polling."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ._files import REGISTRY, AccountError, _ensure_dir, _mkdir, _mutex, _open_rw, account_dir, account_key, describe
from .budget import ACCOUNT_REQUESTS_PER_MIN, IDLE_WAKE_S, RECONCILE_INTERVAL_S, poll_budget, requests_per_min
from .epochs import MAX_EPOCH, PAPER_EPOCH, _entry, _registry, history

if TYPE_CHECKING:
    from ..models import GridConfig


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
