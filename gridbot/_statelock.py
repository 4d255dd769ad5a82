"""One bot per state directory: an flock held for the bot's whole life.

``gridbot run NAME`` typed by hand while ``gridbot@NAME`` runs would otherwise open the same
SQLite file and place a second copy of the grid. The lock is on ``STATE_DIR/lock`` (created with
0600), taken without waiting; the kernel drops it when the process dies, even on ``kill -9``.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from .errors import GridbotError

LOCK_NAME = "lock"


class StateLocked(GridbotError):
    """Another process (the running service, or a run by hand) holds this instance's state."""


def default_state_dir(name: str, user: bool) -> Path:
    """Outside systemd: the instance's state directory (paths.service_state_dir), never ./state in
    the working directory."""
    from .paths import service_state_dir

    return service_state_dir(name, user)


def acquire(state_dir: Path, name: str, by_hand: bool = False) -> int:
    """Lock ``state_dir`` for this process; return the fd to keep open. StateLocked if taken.

    The lock file is opened read-only (flock needs no write access) and created 0644, so a root
    run by hand never leaves a lock the service's own user cannot open. ``by_hand`` (root, outside
    systemd): a state directory owned by the service's user is refused even when unlocked, since
    root would leave database files that user cannot write.
    """
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(state_dir / LOCK_NAME, flags, 0o644)
    except FileNotFoundError:  # a first run: the directory is ours to make
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(state_dir / LOCK_NAME, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StateLocked(f"the state of {name} ({state_dir}) is locked by another process: the service "
                              f"is running (`gridbot stop {name}` first) or another `gridbot run {name}` is") from None
        raise
    owner = os.stat(state_dir).st_uid
    if by_hand and os.geteuid() == 0 and owner != 0:
        os.close(fd)
        raise StateLocked(f"the state of {name} ({state_dir}) belongs to its service user (uid {owner}): "
                          f"run it as the service, `gridbot start {name}`")
    return fd
