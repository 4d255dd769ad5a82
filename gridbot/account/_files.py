"""The account directory's files: the error class, names, the group-shared directory, the short
mutex, and JSON read/written atomically (``paths.write_atomic``)."""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import GridbotError
from ..paths import write_atomic

if TYPE_CHECKING:
    from ..models import GridConfig


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



def account_key(cfg: "GridConfig") -> tuple[str, str]:
    return cfg.exchange, cfg.backpack.account



def account_dir(root: Path, exchange: str, account: str) -> Path:
    return Path(root) / f"{exchange}-{account}"  # the label never holds '/' (models.BackpackConfig)



def describe(exchange: str, account: str) -> str:
    return f"{exchange} account '{account}'"



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
