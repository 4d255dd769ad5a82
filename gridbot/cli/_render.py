"""Output: build rows once, print them as a terminal-wide table or as JSON.

Data goes to stdout, diagnostics to stderr.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any, Optional, Sequence

NA = "n/a"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def note(text: str) -> None:
    print(text, file=sys.stderr)


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


def fields(pairs: Sequence[tuple[str, str]], indent: int = 0) -> None:
    """``key: value`` lines with the keys right-aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        print(f"{' ' * indent}{k:>{width}}: {v}")


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
