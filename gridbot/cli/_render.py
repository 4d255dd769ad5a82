"""Output: build rows once, print them as a terminal-wide table or as JSON.

Data goes to stdout, diagnostics to stderr.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, Optional, Sequence

RED, GREEN, YELLOW, BOLD, RESET = "\033[31m", "\033[32m", "\033[33m", "\033[1m", "\033[0m"

NA = "n/a"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def note(text: str) -> None:
    print(text, file=sys.stderr)


def why_na(rows: Sequence[Any]) -> None:
    """Say once, on stderr, why a running instance's CPU, memory or tasks figure reads n/a (``list``,
    ``status``, ``stats``), instead of leaving a mystery. ``rows``: ``systemd.UnitRow``s."""
    running = [x for x in rows if x.main_pid]
    missing = [what for what, attr in (("CPU", "cpu_ns"), ("memory", "memory_bytes"), ("tasks", "tasks"))
               if any(getattr(x, attr) is None for x in running)]
    if missing:
        note(f"{'/'.join(missing)} n/a: systemd keeps no such figure for these units: its accounting is off for "
             f"them, or the cgroup controller (cpu/cpuacct, memory, pids) is not available to systemd here, "
             f"typically a cgroup v1 container with the controllers mounted read-only (see README, 'CPU and memory "
             f"figures')")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], stretch: Optional[int] = None) -> None:
    """Left-aligned columns; the ``stretch`` column is cut so the table fits the terminal."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if stretch is not None:
        width = shutil.get_terminal_size((120, 24)).columns
        others = sum(w + 2 for i, w in enumerate(widths) if i != stretch)
        room = max(len(headers[stretch]), width - others)
        if widths[stretch] > room:
            widths[stretch] = room
            for r in rows:
                if len(r[stretch]) > room:
                    r[stretch] = r[stretch][: max(room - 1, 0)] + "…"
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    print(line)
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def use_colour(stream: Any = None) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width(stream: Any = None) -> Optional[int]:
    """Columns of the terminal, or None when piped (then nothing is dropped or cut)."""
    stream = stream or sys.stdout
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size((120, 24)).columns


def fit(headers: Sequence[str], widths: Sequence[int], drop_order: Sequence[str], width: Optional[int]) -> list[int]:
    """Indices of the columns to show: drop ``drop_order`` (least important first) until the
    table fits ``width``; None = everything. Columns not in ``drop_order`` always stay."""
    keep = list(range(len(headers)))
    if width is None:
        return keep
    total = lambda: sum(widths[i] for i in keep) + 2 * (len(keep) - 1)  # noqa: E731
    for h in drop_order:
        if total() <= width:
            break
        if h in headers:
            keep.remove(headers.index(h))
    return keep


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], *, drop_order: Sequence[str] = (),
         width: Optional[int] = None, right: Sequence[str] = (), styles: Optional[Sequence[Any]] = None,
         colour: bool = False, bold_rows: Sequence[int] = ()) -> list[str]:
    """A table as lines: columns fitted to ``width`` by dropping, never by cutting a cell.

    ``styles[i]`` maps a header to an ANSI code for row ``i`` (used only with ``colour``).
    """
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    keep = fit(headers, widths, drop_order, width)
    rset = {headers.index(h) for h in right if h in headers}

    def cell(text: str, i: int) -> str:
        return text.rjust(widths[i]) if i in rset else text.ljust(widths[i])

    out = ["  ".join(cell(headers[i], i) for i in keep).rstrip()]
    for n, r in enumerate(rows):
        parts = []
        st = (styles[n] if styles is not None and n < len(styles) else None) or {}
        for i in keep:
            text = cell(r[i], i)
            code = st.get(headers[i]) if colour else None
            if colour and n in bold_rows:
                code = (code or "") + BOLD
            parts.append(f"{code}{text}{RESET}" if code and text.strip() else text)
        out.append("  ".join(parts).rstrip())
    return out


def fields(pairs: Sequence[tuple[str, str]], indent: int = 0) -> None:
    """``key: value`` lines with the keys right-aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        print(f"{' ' * indent}{k:>{width}}: {v}")


def money(x: Any) -> str:
    from .._view import money as m

    return m(x)


def bytes_h(n: Optional[int]) -> str:
    if n is None:
        return NA
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return NA


def cpu_h(ns: Optional[int]) -> str:
    return NA if ns is None else f"{ns / 1e9:.2f}s"


def tasks_h(n: Optional[int]) -> str:
    return NA if n is None else str(n)


def duration_h(seconds: float) -> str:
    s = int(max(seconds, 0))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{s:02d}s"
    return f"{s}s"


def since_h(since_us: int) -> str:
    if not since_us:
        return "-"
    return duration_h(time.time() - since_us / 1e6)


def stamp_h(since_us: int) -> str:
    if not since_us:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(since_us / 1e6))
