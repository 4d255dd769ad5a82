"""``gridbot top``: a live full-screen fleet view (textual; imported by this command only).

Top half: the fleet, the columns of ``gridbot list`` (fitted to the width), sortable: ``s``
cycles the sort column, ``r`` reverses, or click a header. Bottom half, for the selected bot: its
grid (price against the levels), its last fills and its last journal lines. ``q`` quits.
Refreshes every ``interval`` seconds; the systemd and journal reads run in a worker thread.
"""
from __future__ import annotations

import subprocess
import time
from typing import Callable, Optional

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static

from .. import _view
from .._units import unit_name
from . import _render as r

# column -> record key it sorts by
SORT_KEYS = {"NAME": "name", "MODE": "mode", "STATE": "state", "SYMBOL": "symbol", "PRICE": "price",
             "RANGE": "lower", "ORDERS": "orders_open", "PROFIT": "realised_profit", "PNL": "total_pnl",
             "UPTIME": "since", "RESTARTS": "restarts", "CPU": "cpu_seconds", "MEMORY": "memory_bytes",
             "BOOT": "enabled"}

# Snapshot = (records, cells per record, figures by name)
Loader = Callable[[], tuple[list[dict], list[list[str]], dict[str, dict]]]


class Top(App):
    CSS = """
    #fleet { height: 1fr; min-height: 6; }
    #detail { height: 1fr; min-height: 8; border-top: solid $accent; }
    #grid { width: 1fr; min-width: 32; }
    #side { width: 2fr; }
    #fills { height: auto; max-height: 50%; }
    #title { height: 1; }
    """
    BINDINGS = [Binding("q", "quit", "quit"), Binding("s", "sort_next", "sort"),
                Binding("r", "sort_reverse", "reverse"), Binding("escape", "quit", show=False)]

    def __init__(self, load: Loader, logs: Callable[[str], list[str]], interval: float = 2.0) -> None:
        super().__init__()
        self.load, self.logs, self.interval = load, logs, interval
        self.sort_col, self.reverse = "NAME", False
        self.recs: list[dict] = []
        self.cells: dict[str, list[str]] = {}
        self.figs: dict[str, dict] = {}
        self.log_lines: dict[str, list[str]] = {}
        self.selected: Optional[str] = None
        self.columns: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("gridbot top: loading…", id="title")
        yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="detail"):
            yield Static("", id="grid")
            with Vertical(id="side"):
                yield Static("", id="fills")
                yield Static("", id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_data()
        self.set_interval(self.interval, self.refresh_data)

    # -- data ------------------------------------------------------------------------------------
    def refresh_data(self) -> None:
        self.run_worker(self._fetch, thread=True, exclusive=True, group="fetch")

    def _fetch(self) -> None:
        try:
            recs, cells, figs = self.load()
            name = self.selected or (recs[0]["name"] if recs else None)
            logs = {name: self.logs(name)} if name else {}
            err = ""
        except Exception as exc:  # noqa: BLE001 - show it, keep the screen
            recs, figs, logs, err = self.recs, self.figs, {}, str(exc)
            cells = [self.cells.get(x["name"], []) for x in recs]
        self.call_from_thread(self._apply, recs, cells, figs, logs, err)

    def _apply(self, recs: list[dict], cells: list[list[str]], figs: dict, logs: dict, err: str) -> None:
        self.recs, self.figs = recs, figs
        self.cells = {rec["name"]: c for rec, c in zip(recs, cells)}
        self.log_lines.update(logs)
        tots = " ".join(f"| {t['quote']} pnl {_view.money(t['total_pnl'])} grid {_view.money(t['realised_profit'])}"
                        for t in _view.totals(recs))
        self.query_one("#title", Static).update(
            f"{time.strftime('%H:%M:%S')} {len(recs)} bots {tots}" + (f" | error: {err}" if err else ""))
        self._draw_table()
        self._draw_detail()

    # -- drawing ---------------------------------------------------------------------------------
    def _fit_columns(self) -> list[str]:
        from ._columns import LIST_DROP, LIST_HEADERS

        rows = list(self.cells.values())
        widths = [max([len(h)] + [len(c[i]) for c in rows if len(c) > i]) + 1 for i, h in enumerate(LIST_HEADERS)]
        keep = r.fit(LIST_HEADERS, widths, LIST_DROP, max(self.size.width - 2, 20))
        return [LIST_HEADERS[i] for i in keep]

    def _draw_table(self) -> None:
        from ._columns import LIST_HEADERS, list_styles

        table = self.query_one("#fleet", DataTable)
        cols = self._fit_columns()
        labels = [c + ("v" if self.reverse else "^") if c == self.sort_col else c for c in cols]
        if labels != self.columns:
            table.clear(columns=True)
            for c, label in zip(cols, labels):
                table.add_column(label, key=c)
            self.columns = labels
        else:
            table.clear()
        ordered = _view.sort_records(self.recs, SORT_KEYS[self.sort_col], self.reverse)
        idx = {h: i for i, h in enumerate(LIST_HEADERS)}
        target = 0
        for n, rec in enumerate(ordered):
            st = list_styles(rec)
            cell = self.cells[rec["name"]]
            row = []
            for c in cols:
                code = st.get(c)
                style = "red" if code == r.RED else "green" if code == r.GREEN else "yellow" if code == r.YELLOW else ""
                row.append(Text(cell[idx[c]], style=style, justify="right" if c in ("PRICE", "ORDERS", "PROFIT",
                                                                                     "PNL") else "left"))
            table.add_row(*row, key=rec["name"])
            if rec["name"] == self.selected:
                target = n
        if ordered:
            table.move_cursor(row=target)
            self.selected = ordered[target]["name"]

    def _draw_detail(self) -> None:
        name = self.selected
        fig = self.figs.get(name or "")
        grid, fills, log = (self.query_one(f"#{w}", Static) for w in ("grid", "fills", "log"))
        if name is None:
            grid.update("no instances")
            fills.update("")
            log.update("")
            return
        height = max(self.query_one("#detail").size.height - 2, 4)
        if fig is None:
            grid.update(f"{name}\nno figures published (not started since boot?)")
            fills.update("")
        else:
            head = (f"{name} {fig.get('phase')}\n{fig.get('symbol')} pnl {_view.money(fig.get('total_pnl'))} "
                    f"{fig.get('quote')}")
            grid.update(head + "\n" + "\n".join(_view.ladder(fig, height - 2)))
            fl = fig.get("recent_fills") or []
            lines = ["last fills:"] + [
                f"  {time.strftime('%H:%M:%S', time.localtime(f['time']))} {f['side']:<4} {f['qty']} @ {f['price']}"
                for f in fl[:5]] if fl else ["last fills: none yet"]
            if fig.get("note"):
                lines.insert(0, f"note: {fig['note']}")
            fills.update("\n".join(lines))
        log.update("log:\n" + "\n".join(self.log_lines.get(name, [])[-max(height - 7, 3):]))

    # -- interaction -----------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key is not None else None
        if name and name != self.selected:
            self.selected = name
            self._draw_detail()
            self.refresh_data()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        self.reverse = not self.reverse if col == self.sort_col else False
        self.sort_col = col
        self._draw_table()

    def action_sort_next(self) -> None:
        cols = self._fit_columns() or ["NAME"]
        i = cols.index(self.sort_col) if self.sort_col in cols else -1
        self.sort_col, self.reverse = cols[(i + 1) % len(cols)], False
        self._apply(self.recs, [self.cells[x["name"]] for x in self.recs], self.figs, {}, "")

    def action_sort_reverse(self) -> None:
        self.reverse = not self.reverse
        self._apply(self.recs, [self.cells[x["name"]] for x in self.recs], self.figs, {}, "")


def journal_tail(user: bool) -> Callable[[str], list[str]]:
    def tail(name: str) -> list[str]:
        cmd = ["journalctl", "--user" if user else "--system", "-u", unit_name(name, checked=False), "-n", "12",
               "--no-pager", "-o", "short-iso", "-q"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return ["(journalctl unavailable)"]
        lines = out.stdout.splitlines()
        if not lines and out.returncode != 0:
            return ["(no access to the journal: root or the systemd-journal group)"]
        return [ln.split(" ", 2)[-1] if " " in ln else ln for ln in lines]
    return tail
