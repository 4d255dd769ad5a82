"""Lifecycle commands: start, stop (and its alias stop-all), restart, reload, enable, disable,
cleanup, run. Each validates through ``fleet`` first, then reports every job the moment it ends."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

import typer

from .. import fleet
from ..errors import UsageError
from . import _render as r
from ._app import AllOpt, ConfigOpt, NamesArg, TimeoutOpt, _names, _skipped_note


def _report_one(verb: str, o: fleet.JobOutcome, said: Optional[str] = None) -> bool:
    """One line per job; a failure carries the bot's own last error line (``said``) when readable."""
    if o.ok:
        print(f"{o.name}: {verb}", flush=True)
        return True
    why = ""
    if o.row is not None and o.row.result not in ("", "success"):
        why = f" ({o.row.result}, exit status {o.row.exit_status})"
    tail = f": {said}" if said else f"; see `gridbot logs {o.name}`"
    print(f"{o.name}: {verb} FAILED: job {o.result}{why}{tail}", file=sys.stderr, flush=True)
    return False


class _Progress:
    """One line on stderr, redrawn in place, while jobs are pending; only on a terminal."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.tty = sys.stderr.isatty()
        self.shown = False

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False

    def waiting(self, names: list[str], seconds: float) -> None:
        if not self.tty or seconds < 1.0:
            return
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        sys.stderr.write(f"\r\033[K{self.verb}: waiting for {', '.join(names[:3])}{more} ({seconds:.0f}s)")
        sys.stderr.flush()
        self.shown = True


def _jobs(fc: fleet.Context, verb: str, method: str, targets: list[str], timeout: float, stale: Iterable[str] = (),
          already: Iterable[str] = ()) -> list[str]:
    """Run the jobs, printing each result the moment its job ends; exit 1 if any failed.

    ``already``: instances that were running before ``start``; starting a running unit is a no-op,
    so each is told so. ``stale``: those of them whose config ``start -c`` replaced: each is told
    that its new config applies after a restart. Returns those still running."""
    progress = _Progress({"started": "starting", "stopped": "stopping", "restarted": "restarting",
                          "reloaded": "reloading"}.get(verb, verb))
    stale, already = set(stale), set(already)
    ok, old = [], []

    def done(o: fleet.JobOutcome) -> None:
        progress.clear()
        if o.ok and o.name in stale:  # the old grid keeps running
            print(f"{o.name}: already running with its previous config; the new one applies after a restart "
                  f"(`gridbot restart {o.name}`)", flush=True)
            old.append(o.name)
            ok.append(True)
            return
        if o.ok and o.name in already:
            print(f"{o.name}: already running", flush=True)
            ok.append(True)
            return
        ok.append(_report_one(verb, o, None if o.ok else fleet.last_error(fc, o.name, t0)))

    t0 = time.time()
    try:
        fleet.run_jobs(fc, method, targets, timeout, on_done=done, on_wait=progress.waiting)
    finally:
        progress.clear()
    if not all(ok):
        raise typer.Exit(1)
    return [n for n in targets if n in old]


def start(
    ctx: typer.Context,
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    force: bool = typer.Option(False, "--force", help="with -c: replace a different installed config"),
    all_: bool = typer.Option(False, "--all", help="every configured instance"),
    yes: bool = typer.Option(False, "--yes", "-y", help="apply a changed grid of a live instance without asking"),
    timeout: float = TimeoutOpt,
) -> None:
    """Validate (the grid must be able to trade), then start instances and report each the moment it is ready."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths, all_) or fleet.configured(fc)
    if all_ and not targets:
        raise UsageError(f"no configs in {fc.config_dir}: nothing to start")
    # -c files are read once each (valid and feasible); every check, and the question about a changed
    # live grid, passes before the first byte is written: a refused start changes nothing.
    incoming = fleet.read_incoming(fc, paths or [], force=force)
    configs = fleet.preflight(fc, targets, incoming)
    _confirm_changes(fc, configs, yes, starting=True)
    replaced = [i.name for i in incoming if i.changed]
    running = set(fleet.active(fc, targets))
    fleet.install(incoming)
    stale = _jobs(fc, "started", "StartUnit", targets, timeout, stale=running & set(replaced), already=running)
    if stale and sys.stdin.isatty() and typer.confirm(f"restart {', '.join(stale)} now?"):
        _confirm_changes(fc, {n: configs[n] for n in stale}, yes)
        _jobs(fc, "restarted", "RestartUnit", stale, timeout)


def _confirm_changes(fc: fleet.Context, configs: dict, yes: bool, starting: bool = False) -> None:
    """Show each re-grid a (re)start will do; for live instances ask first (--yes skips; no
    terminal and no --yes: refuse, nothing changed). ``starting``: `start` leaves running ones as they are."""
    plans = fleet.change_plans(fc, configs)
    for n in [n for n, c in configs.items() if c.exchange != "paper" and fleet.unreadable_state(fc, n)]:
        r.note(f"{n}: its state is readable by root only, so what this does to its live grid cannot be shown "
               f"(sudo shows it, and asks if the grid changed)")
    running: set[str] = set()
    if plans and starting:
        running = set(fleet.instances_in_state(fc, "active", "activating", "reloading", "deactivating"))
    for p in [p for p in plans if p.name in running]:
        r.note(f"{p.name}: running; start leaves it as it is: `gridbot restart {p.name}` applies its changed grid")
    plans = [p for p in plans if p.name not in running]
    for p in plans:
        for line in p.lines:
            print(line, flush=True)
    live = [p.name for p in plans if p.live]
    if not live or yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"not a terminal: {', '.join(live)} trade(s) real money and the grid changes (see above); "
                         f"pass --yes to apply")
    if not typer.confirm(f"apply the grid change of {', '.join(live)} (real money)?"):
        raise typer.Exit(1)


def _running_or(fc: fleet.Context, names: Optional[List[str]], paths: Optional[List[Path]], all_: bool) -> list[str]:
    """The named instances, or with --all every running one."""
    targets = _names(fc, names, paths, all_)
    if all_:
        skipped: list[str] = []
        targets = fleet.instances_in_state(fc, "active", "activating", "reloading", skipped=skipped)
        _skipped_note(skipped)
    if not targets:
        r.note("no instance is running")
    return targets


def stop(ctx: typer.Context, names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
         timeout: float = TimeoutOpt) -> None:
    """Stop instances (their on_stop setting decides what happens to open orders)."""
    fc: fleet.Context = ctx.obj
    if all_:
        _names(fc, names, paths, all_)  # refuses names together with --all
        _stop_everything(fc, timeout)
        return
    _jobs(fc, "stopped", "StopUnit", _names(fc, names, paths), timeout)


def _stop_everything(fc: fleet.Context, timeout: float) -> None:
    """``stop --all`` and its alias ``stop-all``: one job on gridbot.target (PartOf= takes every
    instance down, including one that is still starting), then each stopped instance by name."""
    foreign: list[str] = []
    stopped = fleet.stop_all(fc, timeout, foreign)
    for u in foreign:
        shown = u.encode("unicode_escape").decode("ascii")[:80]
        print(f"gridbot: not reporting {shown!r}: not a name gridbot accepts (loaded by someone else); "
              f"the stop of gridbot.target reaches it too (PartOf=)", file=sys.stderr)
    if not stopped:
        r.note("no instance is running")
    for n in stopped:
        print(f"{n}: stopped")


def restart(ctx: typer.Context, names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
            yes: bool = typer.Option(False, "--yes", "-y", help="apply a changed grid of a live instance without asking"),
            timeout: float = TimeoutOpt) -> None:
    """Validate, show a changed grid first (live: ask), then restart: a bad config never takes a running bot down."""
    fc: fleet.Context = ctx.obj
    targets = _running_or(fc, names, paths, all_)
    if targets:
        _confirm_changes(fc, fleet.preflight(fc, targets), yes)
        _jobs(fc, "restarted", "RestartUnit", targets, timeout)


def stop_all(ctx: typer.Context, timeout: float = TimeoutOpt) -> None:
    """Alias of `stop --all` (kept for existing scripts; one code path, so they cannot drift apart)."""
    fc: fleet.Context = ctx.obj
    _stop_everything(fc, timeout)


def reload(ctx: typer.Context, names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt,
           timeout: float = TimeoutOpt) -> None:
    """Validate, then reload running instances (SIGHUP): stop_loss, take_profit, on_trigger and on_stop
    apply at once; grid changes need `gridbot restart`."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths)
    fleet.preflight(fc, targets)
    _jobs(fc, "reloaded", "ReloadUnit", targets, timeout)


def enable(
    ctx: typer.Context,
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    now: bool = typer.Option(False, "--now", help="also start them"),
    timeout: float = TimeoutOpt,
) -> None:
    """Start instances at boot (root only: enabling implies managing every unit)."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths)
    fleet.preflight(fc, targets)
    _at_boot(fc, targets, True, now, timeout)


def disable(
    ctx: typer.Context,
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    now: bool = typer.Option(False, "--now", help="also stop them"),
    timeout: float = TimeoutOpt,
) -> None:
    """Stop starting instances at boot."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths)
    fleet.require_known(fc, targets)
    _at_boot(fc, targets, False, now, timeout)


def _at_boot(fc: fleet.Context, targets: list[str], on: bool, now: bool, timeout: float) -> None:
    """enable/disable: the boot symlinks first, then with --now the start/stop jobs."""
    fleet.enable(fc, targets, on)
    for n in targets:
        print(f"{n}: {'enabled' if on else 'disabled'} at boot")
    if now:
        _jobs(fc, "started" if on else "stopped", "StartUnit" if on else "StopUnit", targets, timeout)


def cleanup(ctx: typer.Context, yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Reset failed instances so they leave the failed list (asks first)."""
    fc: fleet.Context = ctx.obj
    skipped: list[str] = []
    failed = fleet.instances_in_state(fc, "failed", skipped=skipped)
    _skipped_note(skipped)
    if not failed:
        print("no failed instance")
        return
    print("failed: " + ", ".join(failed))
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal: pass --yes to reset the failed instances")
        if not typer.confirm(f"reset {len(failed)} failed instance(s)?"):
            raise typer.Exit(1)
    fleet.cleanup(fc, failed)
    for n in failed:
        print(f"{n}: reset")


def run(ctx: typer.Context, name: str = typer.Argument(..., help="instance name")) -> None:
    """Run one bot in the foreground (what the unit's ExecStart runs)."""
    fc: fleet.Context = ctx.obj
    from ..runner import main as run_main

    raise typer.Exit(run_main(fleet.resolve(fc, [name])[0], user=fc.user))
