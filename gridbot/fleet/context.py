"""Which service manager and directories a fleet command works against, and the name rules.

``Context`` is the one object every fleet function takes (system, or ``--user``); the directory
rules themselves live in ``gridbot.paths``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .. import paths
from .._units import check_name
from ..errors import PermissionDenied, UsageError
from ..systemd import Manager


@dataclass
class Context:
    """Which manager and directories a command works against (system, or --user)."""

    user: bool = False

    @property
    def config_dir(self) -> Path:
        return paths.config_dir(self.user)

    @property
    def service_reads(self) -> bool:
        """Whether bots of another uid read this config directory (the system one, DynamicUser=):
        then a config must be readable by them, not only by the root who validates it."""
        return not self.user and self.config_dir == paths.SYSTEM_CONFIG_DIR

    @property
    def state_root(self) -> Path:
        return paths.state_root(self.user)

    def state_dir(self, name: str) -> Path:
        """Where NAME's state really is (paths.state_dir: a dynamic user's is under /var/lib/private)."""
        return paths.state_dir(name, self.user, root=self.state_root)

    @property
    def unit_dir(self) -> Path:
        return paths.unit_dirs(self.user)[0]

    def dropin_dir(self, name: str) -> Path:
        return paths.dropin_dir(name, self.user)

    def manager(self) -> Manager:
        return Manager(user=self.user)


def resolve(ctx: Context, names: Iterable[str], paths: Iterable[Path] = ()) -> list[str]:
    """NAME arguments plus ``-c PATH`` options (stem = name), checked, de-duplicated, in order."""
    stems = []
    for p in paths:
        if not str(p).endswith(".json"):
            raise UsageError(f"-c {p}: a config path must end in .json (its stem is the instance name)")
        stems.append(Path(p).stem)
    out: list[str] = []
    for n in [*names, *stems]:
        check_name(n)
        if n not in out:
            out.append(n)
    return out


def write_file(target: Path, data: bytes) -> None:
    """Atomically put a world-readable file (configs and drop-ins hold no secrets)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        paths.write_atomic(target, data, 0o644)
    except PermissionError:
        raise PermissionDenied(f"cannot write {target}: permission denied (needs root: sudo)") from None


def valid_names(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(names gridbot accepts, names it would refuse): a unit like ``gridbot@--help.service`` that
    someone loaded is skipped by commands over all instances, never passed on, never fatal."""
    good, bad = [], []
    for n in names:
        try:
            good.append(check_name(n))
        except UsageError:
            bad.append(n)
    return good, bad
