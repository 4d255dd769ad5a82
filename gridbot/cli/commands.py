"""The commands: parse, call ``fleet``, print. No systemd or validation logic lives here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import typer

from .. import __version__, fleet
from .. import config as cfgmod
from ..errors import EXIT_CONFIG, EXIT_NO_INSTANCE, EXIT_NOT_RUNNING_STATUS, ConfigError, GridbotError, \
    InstanceNotFound, PermissionDenied, UsageError, exit_table_text
from .._units import TEMPLATE, unit_name
from ..systemd import UnitRow
from . import _render as r

EPILOG = ("\b\nExit codes (the CLI's, then the bot's own as `gridbot run`, the unit's ExecStart):\n"
          + exit_table_text() + "\n\n\b\n--user may come before or after the command; GRIDBOT_USER=1 makes it the default.")

app = typer.Typer(
    help="Run and manage a fleet of grid-trading bots as systemd services (gridbot@NAME).",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
credentials_app = typer.Typer(help="API keys for live instances, stored as systemd credentials.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")

CTX = fleet.Context()


def _complete_names(incomplete: str) -> list[str]:
    return [n for n in cfgmod.list_names(CTX.config_dir) if n.startswith(incomplete)]


NamesArg = typer.Argument(None, help="instance names (config file stems)", autocompletion=_complete_names,
                          show_default=False)
ConfigOpt = typer.Option(None, "-c", "--config", help="config path; its stem is the instance name", show_default=False)
JsonOpt = typer.Option(False, "--json", help="machine-readable output with stable keys")
TimeoutOpt = typer.Option(60.0, "--timeout", help="seconds to wait for each job")


def _version(value: bool) -> None:
    if value:
        print(f"gridbot {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    user: bool = typer.Option(False, "--user", envvar="GRIDBOT_USER",
                              help="talk to your per-user service manager instead of the system's (env GRIDBOT_USER=1)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    CTX.user = user


def _names(names: Optional[List[str]], paths: Optional[List[Path]], all_: bool = False, *, need: bool = True) -> list[str]:
    names, paths = names or [], paths or []
    if all_ and (names or paths):
        raise UsageError("give instance names or --all, not both")
    if all_:
        return []
    out = fleet.resolve(CTX, names, paths)
    if need and not out:
        raise UsageError("no instance given: name one or more (or use --all where offered)")
    return out


def _one(name: Optional[str], paths: Optional[List[Path]], verb: str) -> str:
    """Commands about a single instance: NAME or one -c PATH."""
    targets = _names([name] if name is not None else [], paths)
    if len(targets) != 1:
        raise UsageError(f"{verb} takes exactly one instance")
    return targets[0]


def _report(verb: str, outcomes: list[fleet.JobOutcome]) -> None:
    failed = []
    for o in outcomes:
        if not _report_one(verb, o):
            failed.append(o.name)
    if failed:
        raise typer.Exit(1)


def _report_one(verb: str, o: fleet.JobOutcome) -> bool:
    if o.ok:
        print(f"{o.name}: {verb}", flush=True)
        return True
    why = ""
    if o.row is not None and o.row.result not in ("", "success"):
        why = f" ({o.row.result}, exit status {o.row.exit_status})"
    print(f"{o.name}: {verb} FAILED: job {o.result}{why}; see `gridbot logs {o.name}`", file=sys.stderr, flush=True)
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


def _jobs(verb: str, method: str, targets: list[str], timeout: float, stale: Iterable[str] = ()) -> list[str]:
    """Run the jobs, printing each result the moment its job ends; exit 1 if any failed.

    ``stale``: instances that were running when ``start -c`` replaced their config; starting a
    running unit is a no-op, so each is told that its new config applies after a restart. Returns
    those of them that are still running."""
    progress = _Progress({"started": "starting", "stopped": "stopping", "restarted": "restarting",
                          "reloaded": "reloading"}.get(verb, verb))
    stale = set(stale)
    ok, old = [], []

    def done(o: fleet.JobOutcome) -> None:
        progress.clear()
        if o.ok and o.name in stale:  # the old grid keeps running
            print(f"{o.name}: already running with its previous config; the new one applies after a restart "
                  f"(`gridbot restart {o.name}`)", flush=True)
            old.append(o.name)
            ok.append(True)
            return
        ok.append(_report_one(verb, o))

    try:
        fleet.run_jobs(CTX, method, targets, timeout, on_done=done, on_wait=progress.waiting)
    finally:
        progress.clear()
    if not all(ok):
        raise typer.Exit(1)
    return [n for n in targets if n in old]


# -- lifecycle ----------------------------------------------------------------------------------
@app.command()
def start(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    force: bool = typer.Option(False, "--force", help="with -c: replace a different installed config"),
    all_: bool = typer.Option(False, "--all", help="every configured instance"),
    yes: bool = typer.Option(False, "--yes", "-y", help="apply a changed grid of a live instance without asking"),
    timeout: float = TimeoutOpt,
) -> None:
    """Validate (the grid must be able to trade), then start instances and report each the moment it is ready."""
    targets = _names(names, paths, all_) or fleet.configured(CTX)
    if all_ and not targets:
        raise UsageError(f"no configs in {CTX.config_dir}: nothing to start")
    # -c files are read once each (valid and feasible); every check, and the question about a changed
    # live grid, passes before the first byte is written: a refused start changes nothing.
    incoming = fleet.read_incoming(CTX, paths or [], force=force)
    configs = fleet.preflight(CTX, targets, incoming)
    _confirm_changes(configs, yes, starting=True)
    replaced = [i.name for i in incoming if i.changed]
    running = set(fleet.active(CTX, replaced)) if replaced else set()
    fleet.install(incoming)
    stale = _jobs("started", "StartUnit", targets, timeout, stale=running)
    if stale and sys.stdin.isatty() and typer.confirm(f"restart {', '.join(stale)} now?"):
        _confirm_changes({n: configs[n] for n in stale}, yes)
        _jobs("restarted", "RestartUnit", stale, timeout)


def _confirm_changes(configs: dict, yes: bool, starting: bool = False) -> None:
    """Show each re-grid a (re)start will do; for live instances ask first (--yes skips; no
    terminal and no --yes: refuse, nothing changed). ``starting``: `start` leaves running ones as they are."""
    plans = fleet.change_plans(CTX, configs)
    for n in [n for n, c in configs.items() if c.exchange != "paper" and fleet.unreadable_state(CTX, n)]:
        r.note(f"{n}: its state is readable by root only, so what this does to its live grid cannot be shown "
               f"(sudo shows it, and asks if the grid changed)")
    running: set[str] = set()
    if plans and starting:
        running = set(fleet.instances_in_state(CTX, "active", "activating", "reloading", "deactivating"))
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


AllOpt = typer.Option(False, "--all", help="every running instance (stop: one job on gridbot.target)")


def _skipped_note(units: list[str]) -> None:
    for u in units:
        shown = u.encode("unicode_escape").decode("ascii")[:80]
        print(f"gridbot: skipping {shown!r}: not a name gridbot accepts (loaded by someone else; "
              f"`systemctl stop` it by hand)", file=sys.stderr)


def _running_or(names: Optional[List[str]], paths: Optional[List[Path]], all_: bool) -> list[str]:
    """The named instances, or with --all every running one."""
    targets = _names(names, paths, all_)
    if all_:
        skipped: list[str] = []
        targets = fleet.instances_in_state(CTX, "active", "activating", "reloading", skipped=skipped)
        _skipped_note(skipped)
    if not targets:
        r.note("no instance is running")
    return targets


@app.command()
def stop(names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
         timeout: float = TimeoutOpt) -> None:
    """Stop instances (their on_stop setting decides what happens to open orders)."""
    if all_:
        _names(names, paths, all_)  # refuses names together with --all
        _stop_everything(timeout)
        return
    _jobs("stopped", "StopUnit", _names(names, paths), timeout)


def _stop_everything(timeout: float) -> None:
    """``stop --all`` and its alias ``stop-all``: one job on gridbot.target (PartOf= takes every
    instance down, including one that is still starting), then each stopped instance by name."""
    foreign: list[str] = []
    stopped = fleet.stop_all(CTX, timeout, foreign)
    for u in foreign:
        shown = u.encode("unicode_escape").decode("ascii")[:80]
        print(f"gridbot: not reporting {shown!r}: not a name gridbot accepts (loaded by someone else); "
              f"the stop of gridbot.target reaches it too (PartOf=)", file=sys.stderr)
    if not stopped:
        r.note("no instance is running")
    for n in stopped:
        print(f"{n}: stopped")


@app.command()
def restart(names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
            yes: bool = typer.Option(False, "--yes", "-y", help="apply a changed grid of a live instance without asking"),
            timeout: float = TimeoutOpt) -> None:
    """Validate, show a changed grid first (live: ask), then restart: a bad config never takes a running bot down."""
    targets = _running_or(names, paths, all_)
    if targets:
        _confirm_changes(fleet.preflight(CTX, targets), yes)
        _jobs("restarted", "RestartUnit", targets, timeout)


@app.command("stop-all", hidden=True)
def stop_all(timeout: float = TimeoutOpt) -> None:
    """Alias of `stop --all` (kept for existing scripts; one code path, so they cannot drift apart)."""
    _stop_everything(timeout)


@app.command()
def reload(names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt,
           timeout: float = TimeoutOpt) -> None:
    """Validate, then reload running instances (SIGHUP): stop_loss, take_profit, on_trigger and on_stop
    apply at once; grid changes need `gridbot restart`."""
    targets = _names(names, paths)
    fleet.preflight(CTX, targets)
    _jobs("reloaded", "ReloadUnit", targets, timeout)


@app.command()
def rm(names: Optional[List[str]] = NamesArg,
       purge: bool = typer.Option(False, "--purge", help="also the state directory, credentials and drop-ins"),
       yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
       timeout: float = TimeoutOpt) -> None:
    """Remove instances: stop, disable and delete the config (asks first). --purge: also state, keys, drop-ins."""
    targets = _names(names, None)
    fleet.check_can_remove(CTX, targets)
    fleet.require_known(CTX, targets)
    what = "stop, disable and delete the config of" + (" (and purge the state, credentials and drop-ins of)"
                                                       if purge else "")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"not a terminal: pass --yes to remove {', '.join(targets)}")
        if not typer.confirm(f"{what} {', '.join(targets)}?"):
            raise typer.Exit(1)
    removed = fleet.remove(CTX, targets, purge=purge, timeout=timeout)
    for n, paths_ in removed.items():
        print(f"{n}: removed" + (f" ({', '.join(paths_)})" if paths_ else ""))
        if not purge and CTX.state_dir(n).exists():
            r.note(f"{n}: state kept in {CTX.state_dir(n)}; a new instance of that name would reuse it "
                   f"(`gridbot rm --purge {n}` removes it)")


@app.command()
def enable(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    now: bool = typer.Option(False, "--now", help="also start them"),
    timeout: float = TimeoutOpt,
) -> None:
    """Start instances at boot (root only: enabling implies managing every unit)."""
    targets = _names(names, paths)
    fleet.preflight(CTX, targets)
    fleet.enable(CTX, targets, True)
    for n in targets:
        print(f"{n}: enabled at boot")
    if now:
        _jobs("started", "StartUnit", targets, timeout)


@app.command()
def disable(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    now: bool = typer.Option(False, "--now", help="also stop them"),
    timeout: float = TimeoutOpt,
) -> None:
    """Stop starting instances at boot."""
    targets = _names(names, paths)
    fleet.require_known(CTX, targets)
    fleet.enable(CTX, targets, False)
    for n in targets:
        print(f"{n}: disabled at boot")
    if now:
        _jobs("stopped", "StopUnit", targets, timeout)


@app.command()
def cleanup(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Reset failed instances so they leave the failed list (asks first)."""
    skipped: list[str] = []
    failed = fleet.instances_in_state(CTX, "failed", skipped=skipped)
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
    fleet.cleanup(CTX, failed)
    for n in failed:
        print(f"{n}: reset")


@app.command()
def reset(name: str = typer.Argument(..., autocompletion=_complete_names, show_default=False),
          yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Start a stopped instance over: delete its state on purpose. A live instance's next start
    then cancels its own old open orders (the bot holds the keys) and places a fresh grid."""
    n = fleet.resolve(CTX, [name])[0]
    plan = fleet.reset_plan(CTX, n)
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"not a terminal: pass --yes to reset {n}")
    what = f"{len(plan.state_entries)} entries in {plan.state_dir}" if plan.state_entries else "no state"
    print(f"{n}: deletes its state ({what})")
    if plan.live:
        print(f"{n}: retires its client-id epochs ({', '.join(map(str, plan.epochs)) or 'none recorded'}); its next "
              f"start cancels its open orders on {plan.symbol} carrying them")
    if not yes and not typer.confirm(f"reset {n}?"):
        raise typer.Exit(1)
    for line in fleet.reset_apply(CTX, plan):
        print(f"{n}: {line}")


# -- reading ------------------------------------------------------------------------------------
def _row_json(row: UnitRow) -> dict:
    from .._view import record

    return record(row, fleet.figures(CTX, [row.name]).get(row.name))


LIST_HEADERS = ["NAME", "MODE", "STATE", "SYMBOL", "PRICE", "RANGE", "ORDERS", "PROFIT", "PNL", "UPTIME", "RESTARTS",
                "CPU", "MEMORY", "BOOT"]
# dropped in this order until the table fits the terminal; NAME, STATE, PROFIT and PNL always stay
LIST_DROP = ["BOOT", "CPU", "MEMORY", "RESTARTS", "RANGE", "UPTIME", "MODE", "SYMBOL", "ORDERS", "PRICE"]
LIST_RIGHT = ["PRICE", "ORDERS", "PROFIT", "PNL", "RESTARTS", "CPU", "MEMORY"]


def list_cells(rec: dict, row: Optional[UnitRow]) -> list[str]:
    """One table row of ``gridbot list`` (and ``top``) from a record."""
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    active = rec["active_state"] == "active"
    rng = f"{rec['lower']}-{rec['upper']}" if rec.get("lower") is not None else "-"
    orders = f"{rec['orders_open']}/{rec['levels']}" if rec.get("levels") is not None else "-"
    return [rec["name"], dash(rec.get("mode")), rec["state"], dash(rec.get("symbol")), dash(rec.get("price")), rng,
            orders, r.money(rec.get("realised_profit")), r.money(rec.get("total_pnl")),
            r.since_h(row.since_us) if active and row is not None else "-", str(rec["restarts"]),
            r.cpu_h(row.cpu_ns) if row is not None else "-", r.bytes_h(rec["memory_bytes"]),
            "enabled" if rec["enabled"] else "-"]


def list_styles(rec: dict) -> dict:
    st: dict = {}
    if rec["bad"]:
        st["STATE"] = st["NAME"] = r.RED
    elif rec["active_state"] not in ("active", "inactive"):
        st["STATE"] = r.YELLOW
    for key, head in (("realised_profit", "PROFIT"), ("total_pnl", "PNL")):
        v = rec.get(key)
        if v is not None and v.strip("0.+-") != "":
            st[head] = r.RED if v.startswith("-") else r.GREEN
    return st


def total_cells(t: dict) -> list[str]:
    return [f"TOTAL {t['quote']} ({t['instances']})", "", "", "", "", "", str(t["orders_open"]),
            r.money(t["realised_profit"]), r.money(t["total_pnl"]), "", "", "", "", ""]


def fleet_records(rows: list[UnitRow]) -> list[dict]:
    from .._view import record

    figs = fleet.figures(CTX, [x.name for x in rows])
    return [record(x, figs.get(x.name)) for x in rows]


@app.command("list")
def list_(as_json: bool = JsonOpt,
          wide: bool = typer.Option(False, "--wide", "-w", help="every column, whatever the terminal width")) -> None:
    """Every instance with its money: running, failed, enabled but stopped, configured but never started.

    On a terminal the least important columns go first when it is narrow; piped, nothing is cut.
    """
    rows = fleet.rows(CTX)
    recs = fleet_records(rows)
    if as_json:
        r.emit_json(recs)
        return
    if not rows:
        r.note(f"no instances: put a config in {CTX.config_dir}/NAME.json, then `gridbot start NAME`")
        return
    for line in list_lines(rows, recs, None if wide else r.terminal_width(), r.use_colour()):
        print(line)


def list_lines(rows: list[UnitRow], recs: list[dict], width: Optional[int], colour: bool) -> list[str]:
    """The ``gridbot list`` table: a row per instance, then a TOTAL row per quote asset."""
    from .._view import totals

    body = [list_cells(rec, row) for rec, row in zip(recs, rows)]
    styles = [list_styles(rec) for rec in recs]
    bold = []
    for t in totals(recs):
        bold.append(len(body))
        body.append(total_cells(t))
        styles.append({})
    return r.grid(LIST_HEADERS, body, drop_order=LIST_DROP, width=width, right=LIST_RIGHT, styles=styles,
                  colour=colour, bold_rows=bold)


@app.command()
def top(interval: float = typer.Option(2.0, "--interval", "-i", min=0.5, help="seconds between refreshes"),
        figures_dir: Optional[Path] = typer.Option(None, "--figures-dir",
                                                   help="read figure files from this directory only (no systemd)")
        ) -> None:
    """Live full-screen fleet view: s/r sort, arrows select a bot (its grid, fills, log), q quits."""
    if not sys.stdout.isatty():
        raise UsageError("gridbot top needs a terminal (for a snapshot: gridbot list)")
    from ._top import Top, journal_tail

    if figures_dir is not None:
        load = lambda: _figures_only(figures_dir)  # noqa: E731
        logs = lambda name: []  # noqa: E731
    else:
        def load() -> tuple[list[dict], list[list[str]], dict[str, dict]]:
            rows = fleet.rows(CTX)
            figs = fleet.figures(CTX, [x.name for x in rows])
            from .._view import record

            recs = [record(x, figs.get(x.name)) for x in rows]
            return recs, [list_cells(rec, row) for rec, row in zip(recs, rows)], figs
        logs = journal_tail(CTX.user)
    Top(load, logs, interval).run()


def _figures_only(directory: Path) -> tuple[list[dict], list[list[str]], dict[str, dict]]:
    """Records from figure files alone, for `top --figures-dir`."""
    from ..dashboard import collect_files

    doc = collect_files(directory)
    recs = doc["instances"]
    return recs, [list_cells(rec, None) for rec in recs], {x["name"]: x for x in recs}


@app.command()
def web(host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
        port: int = typer.Option(8787, "--port", "-p", min=0, max=65535, help="TCP port (0: any free port)"),
        interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between fleet refreshes"),
        figures_dir: Optional[Path] = typer.Option(None, "--figures-dir",
                                                   help="read figure files from this directory only (no systemd)"),
        allow_host: Optional[List[str]] = typer.Option(None, "--allow-host",
                                                       help="another host name browsers use to reach it")
        ) -> None:
    """Serve the read-only fleet dashboard (one page: totals, a card per instance, equity charts)."""
    from .. import dashboard

    def ready(p: int) -> None:
        r.note(f"gridbot web: http://{host if ':' not in host else f'[{host}]'}:{p}/ (read-only; Ctrl-C stops)")
        from ..notify import Notifier

        Notifier().ready(f"serving on {host}:{p}")

    try:
        dashboard.serve(CTX, host, port, interval, ready, figures_dir, tuple(allow_host or ()))
    except OSError as exc:
        raise GridbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@app.command()
def status(names: Optional[List[str]] = NamesArg,
           paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt,
           lines: int = typer.Option(5, "-n", "--lines", help="journal lines to show")) -> None:
    """Instances in detail. Exit code, worst of all named: 0 running, 3 not running, 5 no such instance."""
    targets = _names(names, paths)
    worst = 0
    shown: list[dict] = []
    for i, n in enumerate(targets):
        try:
            row = fleet.status(CTX, n)
        except InstanceNotFound as exc:
            print(f"gridbot: error: {exc}", file=sys.stderr)
            worst = max(worst, EXIT_NO_INSTANCE)
            continue
        if row.active_state not in ("active", "reloading"):
            worst = max(worst, EXIT_NOT_RUNNING_STATUS)
        log = fleet.recent_log(CTX, row.name, lines) if lines > 0 else []
        if as_json:
            shown.append(dict(_row_json(row), unit_file=row.fragment_path,
                              invocation_id=row.extra.get("InvocationID"), log=log))
            continue
        if i:
            print()
        _print_status(row, log)
        _why_na([row])
    if as_json and shown:
        r.emit_json(shown[0] if len(targets) == 1 else shown)
    if worst:
        raise typer.Exit(worst)


def _print_status(row: UnitRow, log: list[str]) -> None:
    since = r.stamp_h(row.since_us)
    pairs = [
        ("state", f"{row.active_state} ({row.sub_state})" + (f", result {row.result}" if row.result not in ("", "success") else "")),
        ("since", since + (f" ({r.since_h(row.since_us)} ago)" if row.since_us else "")),
        ("pid", str(row.main_pid or "-")),
        ("restarts", str(row.n_restarts)),
        ("last exit", f"status {row.exit_status}" if row.exit_code else "-"),
        ("cpu", r.cpu_h(row.cpu_ns)),
        ("memory", r.bytes_h(row.memory_bytes)),
        ("tasks", r.tasks_h(row.tasks)),
        ("status", row.status_text or "-"),
        ("boot", "enabled" if row.enabled else "disabled"),
        ("unit", row.fragment_path or "-"),
    ]
    print(f"● {row.unit}")
    r.fields(pairs, indent=2)
    if log:
        print()
        for ln in log:
            print(f"  {ln}")


@app.command()
def stats(as_json: bool = JsonOpt) -> None:
    """CPU time, memory and tasks per instance and in total, from systemd's cgroup accounting."""
    rows = [x for x in fleet.rows(CTX) if x.active_state != "inactive" or x.main_pid]

    def total(attr: str) -> Optional[int]:
        vals = [getattr(x, attr) for x in rows if getattr(x, attr) is not None]
        return sum(vals) if vals else None

    totals = {"cpu_ns": total("cpu_ns"), "memory_bytes": total("memory_bytes"), "tasks": total("tasks")}
    if as_json:
        r.emit_json({
            "instances": [{"name": x.name, "active_state": x.active_state,
                           "cpu_seconds": None if x.cpu_ns is None else x.cpu_ns / 1e9,
                           "memory_bytes": x.memory_bytes, "tasks": x.tasks} for x in rows],
            "total": {"instances": len(rows), "cpu_seconds": None if totals["cpu_ns"] is None else totals["cpu_ns"] / 1e9,
                      "memory_bytes": totals["memory_bytes"], "tasks": totals["tasks"]},
        })
        return
    body = [[x.name, x.active_state, r.cpu_h(x.cpu_ns), r.bytes_h(x.memory_bytes), r.tasks_h(x.tasks)] for x in rows]
    body.append([f"TOTAL ({len(rows)})", "", r.cpu_h(totals["cpu_ns"]), r.bytes_h(totals["memory_bytes"]),
                 r.tasks_h(totals["tasks"])])
    r.table(["NAME", "STATE", "CPU", "MEMORY", "TASKS"], body)
    _why_na(rows)


def _why_na(rows: list[UnitRow]) -> None:
    """Say once, on stderr, why a running instance's figure reads n/a (instead of leaving a mystery)."""
    running = [x for x in rows if x.main_pid]
    missing = [what for what, attr in (("CPU", "cpu_ns"), ("memory", "memory_bytes"), ("tasks", "tasks"))
               if any(getattr(x, attr) is None for x in running)]
    if missing:
        r.note(f"{'/'.join(missing)} n/a: systemd keeps no such figure for these units; its cgroup controller "
               f"(cpu/cpuacct, memory, pids) is not available to systemd here, typically a cgroup v1 container "
               f"with the controllers mounted read-only (see README, 'CPU and memory figures')")


@app.command()
def info(name: str = typer.Argument(None, autocompletion=_complete_names, show_default=False),
         paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Config summary (no secrets: they never live in configs), paths, credential presence."""
    n = _one(name, paths, "info")
    cfg = fleet.validate(CTX, [n])[n]
    data = {
        "name": n,
        "config_path": str(cfgmod.config_path(n, CTX.config_dir)),
        "unit": unit_name(n),
        "unit_file": str(CTX.unit_dir / TEMPLATE),
        "state_dir": str(CTX.state_dir(n)),
        "credentials": ("present" if fleet.has_live_dropin(CTX, n) else "absent") if cfg.exchange != "paper" else "not needed (paper)",
        "config": cfg.model_dump(mode="json", exclude={"schema_ref"}, exclude_none=True),
    }
    if as_json:
        r.emit_json(data)
        return
    c = cfg
    sizing = f"{c.qty_per_level} {c.base_asset}/level" if c.qty_per_level else f"{c.investment} {c.quote_asset} total"
    pairs = [("instance", n), ("exchange", c.exchange), ("symbol", c.symbol),
             ("grid", f"{c.lower_price} .. {c.upper_price}, {c.levels} {c.spacing.value} intervals"),
             ("size", sizing), ("fee rate", str(c.fee_rate)),
             ("stop/take", f"{c.stop_loss or '-'} / {c.take_profit or '-'} (then {c.on_trigger.value})"),
             ("on stop", c.on_stop.value), ("web port", str(c.web_port or "-")),
             ("credentials", data["credentials"]), ("config", data["config_path"]),
             ("unit file", data["unit_file"]), ("state dir", data["state_dir"])]
    r.fields(pairs)


@app.command()
def validate(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    all_: bool = typer.Option(False, "--all", help="every config, and clashes between them"),
    offline: bool = typer.Option(False, "--offline", help="skip the live configs' price-band look-up (public data)"),
    as_json: bool = JsonOpt,
) -> None:
    """Check configs: every error at once, and that the grid will trade (the bot's own start-up checks).

    With --all also clashes: same web_port, same account+symbol, an account's shared rate limit. Live
    ranges are compared with the venue's price band at today's price (public data) unless --offline.
    """
    results: dict[str, Optional[str]] = {}
    missing: list[str] = []
    if all_:
        if names or paths:
            raise UsageError("give instance names or --all, not both")
        good, bad = fleet.load_all(CTX, feasible=True)
        results = {n: None for n in good} | bad
        if not results:
            raise UsageError(f"no configs in {CTX.config_dir}: nothing to validate")
        try:
            fleet.check_clashes(good)
        except ConfigError as exc:
            results["(fleet)"] = str(exc)
    else:
        fleet.require_files(paths or [])
        sources = [(fleet.resolve(CTX, [], [p])[0], p) for p in paths or []]
        installed = []
        for n in fleet.resolve(CTX, names or []):
            path = cfgmod.config_path(n, CTX.config_dir)
            if os.path.lexists(path):
                installed.append((n, path))
            else:
                missing.append(n)
        if not sources and not installed and not missing:
            raise UsageError("no instance given: name one or more, -c PATH, or --all")
        good, bad = fleet.try_load(sources, feasible=True)
        good_installed, bad_installed = fleet.try_load(installed, readable=CTX.service_reads, feasible=True)
        good.update(good_installed)
        bad.update(bad_installed)
        sources += installed
        results = {n: bad.get(n) for n, _path in sources}
    gone = {n: f"no such instance '{n}': no {cfgmod.config_path(n, CTX.config_dir)}" for n in missing}
    warnings: dict[str, list[str]] = {}
    if not offline:
        from ..bands import band_warnings

        warnings = {n: w for n, c in good.items() if (w := band_warnings(c))}
    if as_json:
        r.emit_json({n: {"valid": e is None, "error": e, **({"warnings": warnings[n]} if n in warnings else {})}
                     for n, e in {**results, **gone}.items()})
    else:
        for n, e in results.items():
            print(f"{n}: ok") if e is None else print(f"gridbot: error: {e}", file=sys.stderr)
            for w in warnings.get(n, ()):
                print(f"gridbot: warning: {n}: {w}", file=sys.stderr)
        for e in gone.values():
            print(f"gridbot: error: {e}", file=sys.stderr)
    if gone:
        raise typer.Exit(EXIT_NO_INSTANCE)
    if any(results.values()):
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def logs(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    follow: bool = typer.Option(False, "-f", "--follow", help="keep printing new lines"),
    lines: Optional[int] = typer.Option(None, "-n", "--lines", help="last N lines", min=0),
    since: Optional[str] = typer.Option(None, "--since", help="journalctl time, e.g. '1 hour ago', 'today'"),
    priority: Optional[str] = typer.Option(None, "-p", "--priority", help="emerg..debug or 0..7 (or a range a..b)"),
    grep: Optional[str] = typer.Option(None, "--grep", help="only lines matching this regular expression"),
) -> None:
    """Journal lines of the given instances (all instances when none is named)."""
    targets = _names(names, paths, need=False)
    fleet.require_known(CTX, targets)
    fleet.check_journal_access(CTX)
    cmd = fleet.journal_command(CTX, targets, follow=follow, lines=lines, since=since, priority=priority, grep=grep)
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        code = 0
    if code:  # journalctl has said why (a bad --since, -p or --grep value): its own words, its own code
        raise typer.Exit(code)


@app.command()
def run(name: str = typer.Argument(..., help="instance name")) -> None:
    """Run one bot in the foreground (what the unit's ExecStart runs)."""
    from ..runner import main as run_main

    raise typer.Exit(run_main(fleet.resolve(CTX, [name])[0], user=CTX.user))


@credentials_app.command("set")
def credentials_set(name: str = typer.Argument(..., autocompletion=_complete_names),
                    allow: Optional[List[str]] = typer.Option(
                        None, "--allow", help="an address or CIDR the bot may reach although it is private or "
                                              "link-local (e.g. a proxy on the LAN); repeatable")) -> None:
    """Store NAME's API key and secret (from a pipe: JSON or two lines; else a no-echo prompt)."""
    from .. import credentials
    from .._nodump import forbid_core_dumps

    forbid_core_dumps()  # the secret is in this process's memory from here on

    n = fleet.resolve(CTX, [name])[0]
    cfg = fleet.validate(CTX, [n])[n]  # a paper or broken config is refused before the keys are asked for
    if cfg.exchange == "paper":
        raise ConfigError(f"{n} is a paper instance: it needs no credentials (set \"exchange\" first)")
    fleet.live_dropin(n, "", allow or ())
    key, secret = credentials.read_keys()
    stored = fleet.set_credentials(CTX, n, key, secret, allow or ())
    kind = "encrypted with systemd-creds" if credentials.is_encrypted(stored) else "plain, root-only 0600 (systemd-creds unavailable)"
    print(f"{n}: credentials stored in {stored} ({kind}); restart the instance to use them")


@credentials_app.command("rm")
def credentials_rm(name: str = typer.Argument(..., autocompletion=_complete_names)) -> None:
    """Delete NAME's stored API keys and its live drop-in."""
    n = fleet.resolve(CTX, [name])[0]
    print(f"{n}: credentials removed" if fleet.remove_credentials(CTX, n) else f"{n}: had no credentials")


def _editor(path: Path) -> int:
    import os
    import shlex
    import shutil

    cmd = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    argv = shlex.split(cmd) if cmd else [next((e for e in ("editor", "nano", "vi") if shutil.which(e)), "vi")]
    try:
        return subprocess.call([*argv, str(path)])
    except OSError as exc:
        raise UsageError(f"cannot run the editor {argv[0]!r}: {exc.strerror}; set $EDITOR") from None


def _edit_again(why: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"gridbot: error: {why}", file=sys.stderr)
    return typer.confirm("edit again? (no keeps the installed config)", default=True)


@app.command()
def edit(name: str = typer.Argument(..., autocompletion=_complete_names, show_default=False)) -> None:
    """Edit NAME's config safely: a private copy in $EDITOR, validated, then installed atomically."""
    n = fleet.resolve(CTX, [name])[0]
    if fleet.edit_config(CTX, n, _editor, _edit_again):
        print(f"{n}: config updated; `gridbot restart {n}` applies it to a running instance")
    else:
        print(f"{n}: unchanged")


@app.command()
def schema() -> None:
    """Print the config JSON Schema (for editors)."""
    r.emit_json(cfgmod.schema())
