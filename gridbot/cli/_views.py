"""Fleet views: ``list`` (the table and its TOTAL rows), ``top`` and ``web``. A record per row is
built once, below the CLI (``fleet.records``); here it is only rendered."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import fleet
from ..errors import GridbotError, UsageError
from ..systemd import UnitRow
from . import _render as r
from ._app import JsonOpt
from ._columns import LIST_DROP, LIST_HEADERS, LIST_RIGHT, list_cells, list_styles, total_cells  # noqa: F401


def list_(ctx: typer.Context, as_json: bool = JsonOpt,
          wide: bool = typer.Option(False, "--wide", "-w", help="every column, whatever the terminal width")) -> None:
    """Every instance with its money: running, failed, enabled but stopped, configured but never started.

    On a terminal the least important columns go first when it is narrow; piped, nothing is cut.
    """
    fc: fleet.Context = ctx.obj
    rows = fleet.rows(fc)
    recs, _figs = fleet.records(fc, rows)
    if as_json:
        r.emit_json(recs)
        return
    if not rows:
        r.note(f"no instances: put a config in {fc.config_dir}/NAME.json, then `gridbot start NAME`")
        return
    for line in list_lines(rows, recs, None if wide else r.terminal_width(), r.use_colour()):
        print(line)
    r.why_na(rows)


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


def top(ctx: typer.Context, interval: float = typer.Option(2.0, "--interval", "-i", min=0.5, help="seconds between refreshes"),
        figures_dir: Optional[Path] = typer.Option(None, "--figures-dir",
                                                   help="read figure files from this directory only (no systemd)")
        ) -> None:
    """Live full-screen fleet view: s/r sort, arrows select a bot (its grid, fills, log), q quits."""
    fc: fleet.Context = ctx.obj
    if not sys.stdout.isatty():
        raise UsageError("gridbot top needs a terminal (for a snapshot: gridbot list)")
    from ._top import Top, journal_tail

    if figures_dir is not None:
        load = lambda: _figures_only(figures_dir)  # noqa: E731
        logs = lambda name: []  # noqa: E731
    else:
        def load() -> tuple[list[dict], list[list[str]], dict[str, dict]]:
            rows = fleet.rows(fc)
            recs, figs = fleet.records(fc, rows)
            return recs, [list_cells(rec, row) for rec, row in zip(recs, rows)], figs
        logs = journal_tail(fc.user)
    Top(load, logs, interval).run()


def _figures_only(directory: Path) -> tuple[list[dict], list[list[str]], dict[str, dict]]:
    """Records from figure files alone, for `top --figures-dir`."""
    from ..dashboard import collect_files

    doc = collect_files(directory)
    recs = doc["instances"]
    return recs, [list_cells(rec, None) for rec in recs], {x["name"]: x for x in recs}


def web(ctx: typer.Context, host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
        port: int = typer.Option(8787, "--port", "-p", min=0, max=65535, help="TCP port (0: any free port)"),
        interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between fleet refreshes"),
        figures_dir: Optional[Path] = typer.Option(None, "--figures-dir",
                                                   help="read figure files from this directory only (no systemd)"),
        allow_host: Optional[List[str]] = typer.Option(None, "--allow-host",
                                                       help="another host name browsers use to reach it")
        ) -> None:
    """Serve the read-only fleet dashboard (one page: totals, a card per instance, equity charts)."""
    fc: fleet.Context = ctx.obj
    from .. import dashboard

    def ready(p: int) -> None:
        r.note(f"gridbot web: http://{host if ':' not in host else f'[{host}]'}:{p}/ (read-only; Ctrl-C stops)")
        from ..notify import Notifier

        Notifier().ready(f"serving on {host}:{p}")

    try:
        dashboard.serve(fc, host, port, interval, ready, figures_dir, tuple(allow_host or ()))
    except OSError as exc:
        raise GridbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
