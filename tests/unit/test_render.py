"""gridbot/cli/_render.py and the records it renders (gridbot/_view.py), without systemd: records, TOTAL rows, column dropping, colour, NO_COLOR."""
from __future__ import annotations

import io
import re
from decimal import Decimal as D

from gridbot import _view
from gridbot.cli import _render
from gridbot.cli import _render as r
from gridbot.cli.commands import LIST_HEADERS, list_lines
from gridbot.systemd import UnitRow

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fig(name, quote="USDC", profit="1.5", pnl="-0.25", phase="running", mode="paper"):
    return {"name": name, "mode": mode, "exchange": "paper", "symbol": f"SOL_{quote}", "base": "SOL", "quote": quote,
            "price": "150.3", "lower": "140", "upper": "160", "levels": 10, "orders_open": 9, "realised_profit": profit,
            "unrealised_pnl": str(D(pnl) - D(profit)), "total_pnl": pnl, "fees_in_quote": "0.01", "fills": 4,
            "pairs": 1, "phase": phase, "time": 1.0}


def row(name, active="active", sub="running", **kw):
    return UnitRow(name, f"gridbot@{name}.service", "loaded", active, sub, main_pid=10, since_us=1, n_restarts=2,
                   cpu_ns=1_500_000_000, memory_bytes=30 << 20, tasks=3, enabled=True, **kw)


def fleet():
    rows = [row("a_usdc"), row("b_usdc"), row("c_usdt"), row("dead", "failed", "failed", result="exit-code",
                                                                exit_status=78), row("halted")]
    figs = {"a_usdc": fig("a_usdc", profit="10.25", pnl="-3.10"), "b_usdc": fig("b_usdc", profit="2", pnl="5.5"),
            "c_usdt": fig("c_usdt", "USDT", profit="0.5", pnl="0.75", mode="live"),
            "halted": fig("halted", phase="stopped")}
    return rows, [_view.record(x, figs.get(x.name)) for x in rows]


def test_records_carry_the_figures_and_totals_sum_per_quote():
    rows, recs = fleet()
    a = recs[0]
    assert (a["mode"], a["total_pnl"], a["realised_profit"], a["orders_open"], a["state"]) == \
        ("paper", "-3.10", "10.25", 9, "running")
    assert recs[3]["state"] == "failed (exit 78)" and recs[3]["bad"] and recs[3]["total_pnl"] is None
    assert recs[4]["state"] == "active/stopped" and recs[4]["bad"]  # degraded: its grid stopped trading
    tots = {t["quote"]: t for t in _view.totals(recs)}
    assert D(tots["USDC"]["total_pnl"]) == D("-3.10") + D("5.5") + D("-0.25")
    assert D(tots["USDC"]["realised_profit"]) == D("10.25") + 2 + D("1.5") and tots["USDC"]["instances"] == 3
    assert D(tots["USDT"]["total_pnl"]) == D("0.75") and tots["USDT"]["instances"] == 1


def test_piped_table_is_whole_and_has_a_total_row_per_quote():
    rows, recs = fleet()
    lines = list_lines(rows, recs, None, False)
    assert lines[0].split() == LIST_HEADERS
    assert not any(ANSI.search(x) for x in lines)
    a = lines[1].split()
    assert a[:9] == ["a_usdc", "paper", "running", "SOL_USDC", "150.3", "140-160", "9/10", "+10.25", "-3.10"]
    usdc = next(x for x in lines if x.startswith("TOTAL USDC (3)"))
    assert usdc.split()[-2:] == ["+13.75", "+2.15"]
    assert any(x.startswith("TOTAL USDT (1)") for x in lines)
    assert "failed (exit 78)" in next(x for x in lines if x.startswith("dead"))


def test_narrow_terminal_drops_least_important_columns_first():
    rows, recs = fleet()
    full = max(len(x) for x in list_lines(rows, recs, None, False))
    heads = lambda w: list_lines(rows, recs, w, False)[0].split()  # noqa: E731
    assert heads(full) == LIST_HEADERS
    assert heads(full - 1) == [h for h in LIST_HEADERS if h != "BOOT"]
    at80 = list_lines(rows, recs, 80, False)
    assert all(len(x) <= 80 for x in at80)
    assert {"NAME", "STATE", "PROFIT", "PNL"} <= set(at80[0].split()) and "BOOT" not in at80[0]
    tiny = list_lines(rows, recs, 20, False)[0].split()
    assert tiny == ["NAME", "STATE", "PROFIT", "PNL"]  # never dropped, never cut


def test_colour_marks_failed_and_degraded_red_and_money_by_sign():
    rows, recs = fleet()
    lines = list_lines(rows, recs, None, True)
    dead = next(x for x in lines if ANSI.sub("", x).startswith("dead"))
    halted = next(x for x in lines if ANSI.sub("", x).startswith("halted"))
    assert r.RED + "failed (exit 78)" in dead and r.RED + "active/stopped" in halted
    a = next(x for x in lines if ANSI.sub("", x).startswith("a_usdc"))
    assert re.search(re.escape(r.GREEN) + r" *\+10\.25", a) and re.search(re.escape(r.RED) + r" *-3\.10", a)
    assert r.RED + "running" not in a
    assert [ANSI.sub("", x) for x in lines] == list_lines(rows, recs, None, False)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert r.use_colour(Tty()) is True
    assert r.use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert r.use_colour(Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert r.use_colour(Tty()) is False
    assert r.terminal_width(io.StringIO()) is None  # piped: nothing dropped or cut


def test_sort_records_by_money_numbers_not_text_and_missing_last():
    rows, recs = fleet()
    by_pnl = [x["name"] for x in _view.sort_records(recs, "total_pnl")]
    assert by_pnl == ["a_usdc", "halted", "c_usdt", "b_usdc", "dead"]  # -3.10 < -0.25 < 0.75 < 5.5, then none
    assert [x["name"] for x in _view.sort_records(recs, "total_pnl", reverse=True)][:1] == ["b_usdc"]
    assert _view.sort_records(recs, "total_pnl", reverse=True)[-1]["name"] == "dead"  # missing stays last
    assert [x["name"] for x in _view.sort_records(recs, "name")] == sorted(x["name"] for x in recs)


def test_ladder_marks_orders_and_the_price_and_fits_the_height():
    f = fig("a")
    f["lines"] = [str(140 + 2 * k) for k in range(11)]
    f["orders"] = [["buy", "148", "0.1"], ["sell", "152", "0.2"]]
    f["price"] = "150.5"
    lad = _view.ladder(f, 100)
    assert len(lad) == 12 and lad[0].split() == ["160"] and lad[-1].split() == ["140"]
    i = next(n for n, x in enumerate(lad) if "<<< price" in x)
    assert lad[i - 1].split() == ["152", "SELL", "0.2"] and lad[i + 1].split() == ["150"]
    assert lad[i + 2].split() == ["148", "BUY", "0.1"]
    small = _view.ladder(f, 5)
    assert len(small) == 5 and any("<<< price" in x for x in small)
    assert _view.ladder({}, 5) == ["no grid published yet"]


def test_render_never_prints_uint64_max():
    assert _render.bytes_h(None) == "n/a" and _render.cpu_h(None) == "n/a"
    assert _render.bytes_h(5 * 1024 * 1024) == "5.0M"
    from gridbot.systemd import _figure
    assert _figure(2**64 - 1) is None and _figure(5) == 5


def test_why_na_is_said_once_for_running_units_only(capsys):
    """`list`, `status` and `stats` share it: one stderr line naming the missing figures; nothing when
    every running unit has them; a stopped unit's n/a needs no explanation."""
    def unit(name, pid, **figs):
        return UnitRow(name, f"gridbot@{name}.service", "loaded", "active" if pid else "inactive",
                       "running" if pid else "dead", main_pid=pid, **figs)

    full = {"cpu_ns": 10**9, "memory_bytes": 2**20, "tasks": 3}
    r.why_na([unit("a", 10, **full), unit("b", 0)])
    assert capsys.readouterr().err == ""
    r.why_na([unit("a", 10, **{**full, "cpu_ns": None}), unit("b", 11, **{**full, "cpu_ns": None, "tasks": None})])
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("CPU/tasks n/a: systemd keeps no such figure for these units: its accounting is off")
    assert "'CPU and memory figures'" in line
