"""Lifecycle: preflight, then systemd jobs queued together; and what systemd says of each instance.

Every check (names, configs, clashes, credentials) passes before the first D-Bus call that changes
anything, so a refused request changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from .. import config as cfgmod
from .. import paths
from .._units import TEMPLATE, check_name, instance_of, unit_name
from ..errors import InstanceNotFound, JobFailed, NotInstalled, NotRunning
from ..systemd import Manager, UnitRow
from .configs import Incoming, check_clashes, load_all, validate
from .context import Context, valid_names
from .dropins import check_credentials, has_live_dropin

if TYPE_CHECKING:
    from ..models import GridConfig


def preflight(ctx: Context, names: list[str], incoming: Iterable["Incoming"] = ()) -> dict[str, "GridConfig"]:
    """Before start/restart/enable: valid configs, no clash with any other configured instance,
    and live instances have credentials; the grids are feasible. ``incoming`` (from ``start -c``,
    read and checked once by read_incoming) stand in for the installed configs of their names:
    checked as if installed, before they are. Raises before anything is written or sent to systemd."""
    new = {i.name: i.cfg for i in incoming}
    configs = {**validate(ctx, [n for n in names if n not in new], feasible=True),
               **{n: new[n] for n in names if n in new}}
    others, _bad = load_all(ctx, skip=configs)
    check_clashes({**others, **configs})
    check_credentials(ctx, configs)
    return configs


def known(ctx: Context, m: Manager, names: list[str]) -> None:
    """Raise InstanceNotFound unless each name has a config or a unit systemd knows of."""
    configured = set(cfgmod.list_names(ctx.config_dir))
    unknown = [n for n in names if n not in configured]
    if not unknown:
        return
    rows = {r.name: r for r in m.rows(unknown, set())}
    for n in unknown:
        r = rows.get(n)
        if r is None or r.load_state != "loaded" or (r.active_state == "inactive" and not r.since_us):
            raise InstanceNotFound(f"no such instance '{n}': no {ctx.config_dir / (n + '.json')} and no unit")


def ensure_template(m: Manager) -> None:
    if not m.template_loaded():
        raise NotInstalled(f"{TEMPLATE} is not installed: run `sudo ./packaging/install.sh` first")


@dataclass(frozen=True)
class JobOutcome:
    name: str
    result: str
    row: Optional[UnitRow] = None

    @property
    def ok(self) -> bool:
        return self.result == "done"


def run_jobs(ctx: Context, method: str, names: list[str], timeout: float,
             on_done: Optional[Callable[[JobOutcome], None]] = None,
             on_wait: Optional[Callable[[list[str], float], None]] = None) -> list[JobOutcome]:
    """Queue one job per instance, all at once; ``on_done`` hears of each the moment it ends
    (``on_wait(pending names, seconds)`` about twice a second while some are left)."""
    with ctx.manager() as m:
        ensure_template(m)
        if method != "StartUnit":
            known(ctx, m, names)
        if method == "ReloadUnit":
            idle = [r.name for r in m.rows(names, set()) if r.active_state not in ("active", "reloading")]
            if idle:
                raise NotRunning(f"not running, nothing to reload: {', '.join(idle)} (start it instead)")
        outcomes: dict[str, JobOutcome] = {}

        def done(unit: str, result: str) -> None:
            name = instance_of(unit) or unit
            row = m.rows([name], set())[0] if result != "done" else None
            outcomes[name] = JobOutcome(name, result, row)
            if on_done is not None:
                on_done(outcomes[name])

        waiting = None
        if on_wait is not None:
            waiting = lambda units, s: on_wait([instance_of(u) or u for u in units], s)  # noqa: E731
        m.run_jobs(method, [unit_name(n) for n in names], timeout, done, waiting)
        return [outcomes[n] for n in names]


def require_known(ctx: Context, names: list[str]) -> None:
    """InstanceNotFound unless each name has a config or a unit systemd knows of (logs, rm)."""
    if not names:
        return
    with ctx.manager() as m:
        known(ctx, m, names)


def active(ctx: Context, names: list[str]) -> list[str]:
    """Those of ``names`` whose unit is running (active, activating or reloading)."""
    with ctx.manager() as m:
        states = m.active_states(names)
    return [n for n in names if states.get(n) in ("active", "activating", "reloading")]


def instances_in_state(ctx: Context, *states: str, skipped: Optional[list[str]] = None) -> list[str]:
    """Loaded instances in one of ``states``; units with a name gridbot refuses go to ``skipped``."""
    with ctx.manager() as m:
        good, bad = valid_names(m.loaded_instances())
        if skipped is not None:
            skipped.extend(unit_name(n, checked=False) for n in bad)
        return [r.name for r in m.rows(good, set()) if r.active_state in states]


def stop_all(ctx: Context, timeout: float, foreign: Optional[list[str]] = None) -> list[str]:
    """One job on gridbot.target; PartOf= propagates the stop to every instance. Loaded units with a
    name gridbot refuses go to ``foreign`` (named, never reported as gridbot's own)."""
    with ctx.manager() as m:
        good, bad = valid_names(m.loaded_instances())
        if foreign is not None:
            foreign.extend(unit_name(n, checked=False) for n in bad)
        before = [r.name for r in m.rows(good, set())
                  if r.active_state in ("active", "activating", "reloading", "deactivating")]
        result = m.stop_target(timeout)
        if result != "done":
            raise JobFailed(f"stopping gridbot.target: job {result}")
        still = [r.name for r in m.rows(before, set()) if r.active_state in ("active", "activating", "deactivating")]
        if still:
            raise JobFailed(f"still running after stop-all: {', '.join(still)}")
        return before


def enabled_instances(user: bool = False) -> set[str]:
    """Enabled instances, from the wants directories.

    systemd cannot list enabled template instances (ListUnitFiles shows only the template) and
    GetUnitFileState per instance costs ~3 ms each; the symlinks are the source of truth anyway.
    """
    found: set[str] = set()
    for base in paths.unit_dirs(user):
        try:
            wants = [d for d in base.iterdir() if d.name.endswith((".wants", ".requires"))]
        except OSError:
            continue
        for d in wants:
            try:
                for link in d.iterdir():
                    name = instance_of(link.name)
                    if name:
                        found.add(name)
            except OSError:
                continue
    return found


def all_names(ctx: Context, m: Manager, enabled: set[str]) -> list[str]:
    """Configs, loaded units and enabled instances: systemd alone cannot list them all."""
    return sorted(set(cfgmod.list_names(ctx.config_dir)) | set(m.loaded_instances()) | enabled)


def rows(ctx: Context) -> list[UnitRow]:
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        return m.rows(all_names(ctx, m, enabled), enabled)


def figures_dir(ctx: Context) -> Path:
    return paths.figures_dir(ctx.user)


def figures(ctx: Context, names: list[str]) -> dict[str, dict]:
    """The figures each named bot published (absent: never ran since boot, or not publishing)."""
    from ..figures import read_all

    return read_all(figures_dir(ctx), names)


def status(ctx: Context, name: str) -> UnitRow:
    check_name(name)
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        known(ctx, m, [name])
        return m.status(name, enabled)


def enable(ctx: Context, names: list[str], on: bool) -> None:
    with ctx.manager() as m:
        ensure_template(m)
        units = [unit_name(n) for n in names]
        m.enable(units) if on else m.disable(units)


def cleanup(ctx: Context, names: list[str]) -> None:
    with ctx.manager() as m:
        for n in names:
            m.reset_failed(unit_name(n))


def records(ctx: Context, rows_: list[UnitRow]) -> tuple[list[dict], dict[str, dict]]:
    """Each row joined with its bot's figures into the record list, top, status, web and ``--json``
    show (``_view.record``: built once per row, here), and the figures read for them."""
    from .._view import record

    figs = figures(ctx, [x.name for x in rows_])
    return [record(x, figs.get(x.name)) for x in rows_], figs


def info(ctx: Context, name: str) -> tuple["GridConfig", dict]:
    """``gridbot info``: the validated config and where everything of NAME is (no secrets)."""
    cfg = validate(ctx, [name])[name]
    data = {
        "name": name,
        "config_path": str(cfgmod.config_path(name, ctx.config_dir)),
        "unit": unit_name(name),
        "unit_file": str(ctx.unit_dir / TEMPLATE),
        "state_dir": str(ctx.state_dir(name)),
        "credentials": ("present" if has_live_dropin(ctx, name) else "absent") if cfg.exchange != "paper"
        else "not needed (paper)",
        "config": cfg.model_dump(mode="json", exclude={"schema_ref"}, exclude_none=True),
    }
    return cfg, data
