"""The commands: parse, call ``fleet``, print. No systemd or validation logic lives here."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import __version__, fleet
from .. import config as cfgmod
from ..errors import ConfigError, GridbotError, UsageError
from ..systemd import UnitRow
from . import _render as r

app = typer.Typer(
    help="Run and manage a fleet of grid-trading bots as systemd services (gridbot@NAME).",
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
    user: bool = typer.Option(False, "--user", help="talk to your per-user service manager instead of the system's"),
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
        if o.ok:
            print(f"{o.name}: {verb}")
            continue
        why = ""
        if o.row is not None and o.row.result not in ("", "success"):
            why = f" ({o.row.result}, exit status {o.row.exit_status})"
        print(f"{o.name}: {verb} FAILED: job {o.result}{why}; see `gridbot logs {o.name}`", file=sys.stderr)
        failed.append(o.name)
    if failed:
        raise typer.Exit(1)


# -- lifecycle ----------------------------------------------------------------------------------
@app.command()
def start(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    force: bool = typer.Option(False, "--force", help="with -c: replace a different installed config"),
    timeout: float = TimeoutOpt,
) -> None:
    """Validate, then start instances and wait for each to be ready."""
    targets = _names(names, paths)
    fleet.install_configs(CTX, paths or [], force=force)
    fleet.preflight(CTX, targets)
    _report("started", fleet.run_jobs(CTX, "StartUnit", targets, timeout))


AllOpt = typer.Option(False, "--all", help="every running instance")


def _running_or(names: Optional[List[str]], paths: Optional[List[Path]], all_: bool) -> list[str]:
    """The named instances, or with --all every running one."""
    targets = _names(names, paths, all_) or fleet.instances_in_state(CTX, "active", "activating", "reloading")
    if not targets:
        r.note("no instance is running")
    return targets


@app.command()
def stop(names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
         timeout: float = TimeoutOpt) -> None:
    """Stop instances (their on_stop setting decides what happens to open orders)."""
    targets = _running_or(names, paths, all_)
    if targets:
        _report("stopped", fleet.run_jobs(CTX, "StopUnit", targets, timeout))


@app.command()
def restart(names: Optional[List[str]] = NamesArg, paths: Optional[List[Path]] = ConfigOpt, all_: bool = AllOpt,
            timeout: float = TimeoutOpt) -> None:
    """Validate, then restart instances: a bad config never takes a running bot down."""
    targets = _running_or(names, paths, all_)
    if targets:
        fleet.preflight(CTX, targets)
        _report("restarted", fleet.run_jobs(CTX, "RestartUnit", targets, timeout))


@app.command("stop-all")
def stop_all(timeout: float = TimeoutOpt) -> None:
    """Stop every instance with one job on gridbot.target."""
    stopped = fleet.stop_all(CTX, timeout)
    print(f"stopped gridbot.target ({len(stopped)} instance(s): {', '.join(stopped) or 'none running'})")


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
        _report("started", fleet.run_jobs(CTX, "StartUnit", targets, timeout))


@app.command()
def disable(
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    now: bool = typer.Option(False, "--now", help="also stop them"),
    timeout: float = TimeoutOpt,
) -> None:
    """Stop starting instances at boot."""
    targets = _names(names, paths)
    fleet.enable(CTX, targets, False)
    for n in targets:
        print(f"{n}: disabled at boot")
    if now:
        _report("stopped", fleet.run_jobs(CTX, "StopUnit", targets, timeout))


@app.command()
def cleanup(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Reset failed instances so they leave the failed list (asks first)."""
    failed = fleet.instances_in_state(CTX, "failed")
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


# -- reading ------------------------------------------------------------------------------------
def _state(row: UnitRow) -> str:
    """State plus, for a failed instance, why (exit status or systemd's result)."""
    if row.load_state != "loaded":
        return row.load_state
    if row.active_state == "failed":
        why = f"exit {row.exit_status}" if row.result == "exit-code" else row.result
        return f"failed ({why})" if why else "failed"
    return row.active_state if row.sub_state in ("running", "dead") else f"{row.active_state}/{row.sub_state}"


def _row_json(row: UnitRow) -> dict:
    return {
        "name": row.name, "unit": row.unit, "load_state": row.load_state, "active_state": row.active_state,
        "sub_state": row.sub_state, "main_pid": row.main_pid or None,
        "since": row.since_us / 1e6 if row.since_us else None, "restarts": row.n_restarts,
        "result": row.result or None, "exit_status": row.exit_status, "cpu_seconds": None if row.cpu_ns is None else row.cpu_ns / 1e9,
        "memory_bytes": row.memory_bytes, "tasks": row.tasks, "status_text": row.status_text, "enabled": row.enabled,
    }


@app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """Every instance: running, failed, enabled but stopped, configured but never started."""
    rows = fleet.rows(CTX)
    if as_json:
        r.emit_json([_row_json(x) for x in rows])
        return
    if not rows:
        r.note(f"no instances: put a config in {CTX.config_dir}/NAME.json, then `gridbot start NAME`")
        return
    up = lambda x: r.since_h(x.since_us) if x.active_state == "active" else "-"  # noqa: E731
    r.table(
        ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "BOOT", "STATUS"],
        [[x.name, _state(x), str(x.main_pid or "-"), up(x), str(x.n_restarts), r.cpu_h(x.cpu_ns),
          r.bytes_h(x.memory_bytes), "enabled" if x.enabled else "-", x.status_text or "-"] for x in rows],
        stretch=8,
    )


@app.command()
def status(name: str = typer.Argument(None, autocompletion=_complete_names, show_default=False),
           paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt,
           lines: int = typer.Option(5, "-n", "--lines", help="journal lines to show")) -> None:
    """One instance in detail. Exit code as systemctl: 0 active, 3 not running, 4 no such instance."""
    row = fleet.status(CTX, _one(name, paths, "status"))
    log = fleet.recent_log(CTX, row.name, lines) if lines > 0 else []
    if as_json:
        r.emit_json(dict(_row_json(row), unit_file=row.fragment_path, invocation_id=row.extra.get("InvocationID"),
                         log=log))
    else:
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
    if row.active_state in ("active", "reloading"):
        return
    raise typer.Exit(3)


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


@app.command()
def info(name: str = typer.Argument(None, autocompletion=_complete_names, show_default=False),
         paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Config summary (no secrets: they never live in configs), paths, credential presence."""
    n = _one(name, paths, "info")
    cfg = fleet.validate(CTX, [n])[n]
    data = {
        "name": n,
        "config_path": str(cfgmod.config_path(n, CTX.config_dir)),
        "unit": f"gridbot@{n}.service",
        "unit_file": str(CTX.unit_dir / "gridbot@.service"),
        "state_dir": str(CTX.state_root / n),
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
    """Check configs (and with --all, clashes: same web_port, same account+symbol); live ranges are
    compared with the venue's price band at today's price unless --offline."""
    results: dict[str, Optional[str]] = {}
    if all_:
        if names or paths:
            raise UsageError("give instance names or --all, not both")
        good, bad = fleet.load_all(CTX)
        results = {n: None for n in good} | bad
        if not results:
            raise UsageError(f"no configs in {CTX.config_dir}: nothing to validate")
        try:
            fleet.check_clashes(good)
        except ConfigError as exc:
            results["(fleet)"] = str(exc)
    else:
        sources = [(fleet.resolve(CTX, [], [p])[0], p) for p in paths or []]
        sources += [(n, cfgmod.config_path(n, CTX.config_dir)) for n in fleet.resolve(CTX, names or [])]
        good, bad = fleet.try_load(sources)
        results = {n: bad.get(n) for n, _path in sources}
        if not results:
            raise UsageError("no instance given: name one or more, -c PATH, or --all")
    warnings: dict[str, list[str]] = {}
    if not offline:
        from ..bands import band_warnings

        warnings = {n: w for n, c in good.items() if (w := band_warnings(c))}
    if as_json:
        r.emit_json({n: {"valid": e is None, "error": e, **({"warnings": warnings[n]} if n in warnings else {})}
                     for n, e in results.items()})
    else:
        for n, e in results.items():
            print(f"{n}: ok") if e is None else print(f"gridbot: error: {e}", file=sys.stderr)
            for w in warnings.get(n, ()):
                print(f"gridbot: warning: {n}: {w}", file=sys.stderr)
    if any(results.values()):
        raise typer.Exit(6)


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
    cmd = fleet.journal_command(CTX, targets, follow=follow, lines=lines, since=since, priority=priority, grep=grep)
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        code = 0
    if code not in (0, 1):
        raise typer.Exit(code)
    if code == 1:
        raise GridbotError("journalctl failed (see above); reading logs may need root or the systemd-journal group")


@app.command()
def run(name: str = typer.Argument(..., help="instance name")) -> None:
    """Run one bot in the foreground (what the unit's ExecStart runs)."""
    from ..runner import main as run_main

    raise typer.Exit(run_main(fleet.resolve(CTX, [name])[0]))


@credentials_app.command("set")
def credentials_set(name: str = typer.Argument(..., autocompletion=_complete_names)) -> None:
    """Store NAME's API key and secret (from a pipe: JSON or two lines; else a no-echo prompt)."""
    from .. import credentials

    n = fleet.resolve(CTX, [name])[0]
    key, secret = credentials.read_keys()
    stored = fleet.set_credentials(CTX, n, key, secret)
    kind = "encrypted with systemd-creds" if credentials.is_encrypted(stored) else "plain, root-only 0600 (systemd-creds unavailable)"
    print(f"{n}: credentials stored in {stored} ({kind}); restart the instance to use them")


@credentials_app.command("rm")
def credentials_rm(name: str = typer.Argument(..., autocompletion=_complete_names)) -> None:
    """Delete NAME's stored API keys and its live drop-in."""
    n = fleet.resolve(CTX, [name])[0]
    print(f"{n}: credentials removed" if fleet.remove_credentials(CTX, n) else f"{n}: had no credentials")


@app.command()
def schema() -> None:
    """Print the config JSON Schema (for editors)."""
    r.emit_json(cfgmod.schema())
