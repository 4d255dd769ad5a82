"""Where gridbot's files are, system and ``--user``, and the one atomic file writer.

Every directory rule lives here; the other modules ask, none spells a path itself:

=================  ===================================  ==========================================
what               system                               ``--user``
=================  ===================================  ==========================================
configs            /etc/gridbot                         $XDG_CONFIG_HOME/gridbot (~/.config/gridbot)
credentials        /etc/gridbot/credentials (root)      (none: credentials are system-wide only)
alert hook         /etc/gridbot/alert                   (the system's only)
state root         /var/lib/gridbot                     $XDG_STATE_HOME/gridbot (~/.local/state/...)
an instance state  /var/lib/private/gridbot/NAME        <state root>/NAME
                   (DynamicUser=; /var/lib/gridbot/NAME
                   is systemd's symlink to it)
accounts           <state root>/.accounts               <state root>/.accounts
figures            /run/gridbot/figures                 $XDG_RUNTIME_DIR/gridbot/figures
unit files         /etc/systemd/system (+ /run/...)     $XDG_CONFIG_HOME/systemd/user (+ runtime)
drop-ins           <unit dir>/gridbot@NAME.service.d    the same under the user unit dir
=================  ===================================  ==========================================

Overrides (tests, odd layouts): ``GRIDBOT_CONFIG_DIR`` (or systemd's ``CONFIGURATION_DIRECTORY``),
``GRIDBOT_ACCOUNTS_DIR``, ``GRIDBOT_FIGURES_DIR``; the bot's own ``STATE_DIRECTORY`` and
``GRIDBOT_STATE_DIR`` are read by the runner. Pure lookups: nothing here creates a directory.
Imports only the standard library (and ``_units`` for the unit name), so ``gridbot list`` pays
nothing for it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from ._units import unit_name

SYSTEM_CONFIG_DIR = Path("/etc/gridbot")
CREDENTIALS_DIR = SYSTEM_CONFIG_DIR / "credentials"
ALERT_HOOK = SYSTEM_CONFIG_DIR / "alert"  # the operator's hook, run by gridbot-alert@.service
SYSTEM_STATE_ROOT = Path("/var/lib/gridbot")
SYSTEM_FIGURES_DIR = Path("/run/gridbot/figures")
SYSTEM_UNIT_DIRS = (Path("/etc/systemd/system"), Path("/run/systemd/system"))
ACCOUNTS_DIRNAME = ".accounts"


def _xdg(var: str, *default: str) -> Path:
    return Path(os.environ.get(var) or Path.home().joinpath(*default))


def _runtime_dir() -> Path:
    return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")


def config_dir(user: bool = False) -> Path:
    """Where configs live: $GRIDBOT_CONFIG_DIR, systemd's $CONFIGURATION_DIRECTORY, or the default."""
    env = os.environ.get("GRIDBOT_CONFIG_DIR") or os.environ.get("CONFIGURATION_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    if user:
        return _xdg("XDG_CONFIG_HOME", ".config") / "gridbot"
    return SYSTEM_CONFIG_DIR


def state_root(user: bool = False) -> Path:
    """The parent of every instance's ``StateDirectory=gridbot/NAME``, as seen from outside."""
    return _xdg("XDG_STATE_HOME", ".local", "state") / "gridbot" if user else SYSTEM_STATE_ROOT


def service_state_dir(name: str, user: bool = False) -> Path:
    """``<state root>/NAME``: the path the service's StateDirectory= is reached by (for a system
    instance a symlink into /var/lib/private once it ran as its dynamic user)."""
    return state_root(user) / name


def state_dir(name: str, user: bool = False, root: Optional[Path] = None) -> Path:
    """Where NAME's state really is. A system instance runs as its own dynamic user:
    StateDirectory=gridbot/NAME lives in /var/lib/private/gridbot/NAME, and systemd leaves
    /var/lib/gridbot/NAME as a symlink to it. A state from before per-instance users is still
    the directory /var/lib/gridbot/NAME itself until the instance's next start moves it."""
    base = Path(root) if root is not None else state_root(user)
    if user:
        return base / name
    old = base / name
    if not old.is_symlink() and os.path.isdir(old):
        return old
    return base.parent / "private" / base.name / name


def accounts_root(state_root_: Path) -> Path:
    """$GRIDBOT_ACCOUNTS_DIR, else ``<state root>/.accounts`` (the parent of every instance's state
    directory: /var/lib/gridbot for the system, ~/.local/state/gridbot for --user)."""
    env = os.environ.get("GRIDBOT_ACCOUNTS_DIR")
    return Path(env) if env else Path(state_root_) / ACCOUNTS_DIRNAME


def figures_dir(user: Optional[bool] = None) -> Path:
    """Where figures live. ``GRIDBOT_FIGURES_DIR`` overrides (tests, odd layouts).

    ``user=None`` (the bot): a per-user manager sets ``XDG_RUNTIME_DIR``, the system one does not.
    """
    env = os.environ.get("GRIDBOT_FIGURES_DIR")
    if env:
        return Path(env)
    if user is None:
        user = bool(os.environ.get("XDG_RUNTIME_DIR")) and os.getuid() != 0
    return _runtime_dir() / "gridbot" / "figures" if user else SYSTEM_FIGURES_DIR


def unit_dirs(user: bool = False) -> list[Path]:
    """Directories whose ``*.wants`` hold enablement symlinks (persistent, then runtime); the
    first is where gridbot writes drop-ins."""
    if user:
        return [_xdg("XDG_CONFIG_HOME", ".config") / "systemd" / "user", _runtime_dir() / "systemd" / "user"]
    return list(SYSTEM_UNIT_DIRS)


def dropin_dir(name: str, user: bool = False) -> Path:
    """``<unit dir>/gridbot@NAME.service.d``: the instance's own drop-ins."""
    return unit_dirs(user)[0] / f"{unit_name(name)}.d"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """The one atomic writer: a fresh temporary file beside ``path`` (O_EXCL, O_NOFOLLOW, made
    ``mode`` whatever the umask), fsync, rename over ``path``, fsync the directory. Readers see the
    old file or the new one, never a part; a crash leaves no half-written file. The temporary file
    is removed on any failure; OSError (PermissionError, ENOSPC, ...) is the caller's to word."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
