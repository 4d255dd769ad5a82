"""Inspecting commands: status, stats, info, validate, logs. Exit codes as the README's table:
status 0/3/5, validate 5/6, logs passes journalctl's own through."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import fleet
from ..errors import EXIT_CONFIG, EXIT_NO_INSTANCE, EXIT_NOT_RUNNING_STATUS, InstanceNotFound
from ..systemd import UnitRow
from . import _render as r
from ._app import ConfigOpt, JsonOpt, NamesArg, _complete_names, _names, _one


def status(ctx: typer.Context, names: Optional[List[str]] = NamesArg,
           paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt,
           lines: int = typer.Option(5, "-n", "--lines", help="journal lines to show")) -> None:
    """Instances in detail. Exit code, worst of all named: 0 running, 3 not running, 5 no such instance."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths)
    worst = 0
    shown: list[dict] = []
    for i, n in enumerate(targets):
        try:
            row = fleet.status(fc, n)
        except InstanceNotFound as exc:
            print(f"gridbot: error: {exc}", file=sys.stderr)
            worst = max(worst, EXIT_NO_INSTANCE)
            continue
        if row.active_state not in ("active", "reloading"):
            worst = max(worst, EXIT_NOT_RUNNING_STATUS)
        log = fleet.recent_log(fc, row.name, lines) if lines > 0 else []
        if as_json:
            shown.append(dict(fleet.records(fc, [row])[0][0], unit_file=row.fragment_path,
                              invocation_id=row.extra.get("InvocationID"), log=log))
            continue
        if i:
            print()
        _print_status(row, log)
        r.why_na([row])
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


def stats(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """CPU time, memory and tasks per instance and in total, from systemd's cgroup accounting."""
    fc: fleet.Context = ctx.obj
    rows = [x for x in fleet.rows(fc) if x.active_state != "inactive" or x.main_pid]

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
    r.why_na(rows)


def info(ctx: typer.Context, name: str = typer.Argument(None, autocompletion=_complete_names, show_default=False),
         paths: Optional[List[Path]] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Config summary (no secrets: they never live in configs), paths, credential presence."""
    fc: fleet.Context = ctx.obj
    n = _one(fc, name, paths, "info")
    cfg, data = fleet.info(fc, n)
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


def validate(
    ctx: typer.Context,
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
    fc: fleet.Context = ctx.obj
    report = fleet.validate_report(fc, names or [], paths or [], all_, offline=offline)
    results, gone, warnings = report.results, report.gone, report.warnings
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


def logs(
    ctx: typer.Context,
    names: Optional[List[str]] = NamesArg,
    paths: Optional[List[Path]] = ConfigOpt,
    follow: bool = typer.Option(False, "-f", "--follow", help="keep printing new lines"),
    lines: Optional[int] = typer.Option(None, "-n", "--lines", help="last N lines", min=0),
    since: Optional[str] = typer.Option(None, "--since", help="journalctl time, e.g. '1 hour ago', 'today'"),
    priority: Optional[str] = typer.Option(None, "-p", "--priority", help="emerg..debug or 0..7 (or a range a..b)"),
    grep: Optional[str] = typer.Option(None, "--grep", help="only lines matching this regular expression"),
) -> None:
    """Journal lines of the given instances (all instances when none is named)."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, paths, need=False)
    fleet.require_known(fc, targets)
    fleet.check_journal_access(fc)
    cmd = fleet.journal_command(fc, targets, follow=follow, lines=lines, since=since, priority=priority, grep=grep)
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        code = 0
    if code:  # journalctl has said why (a bad --since, -p or --grep value): its own words, its own code
        raise typer.Exit(code)
