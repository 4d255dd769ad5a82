"""The journal: ``gridbot logs`` runs journalctl (exact ``-u`` semantics, no native dependency),
after saying which right is missing when an operator would otherwise see only '-- No entries --'."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Optional

from .._units import PATTERN, unit_name
from ..errors import GridbotError, PermissionDenied
from .context import Context


# systemd's own lines about any failed start say nothing the job result does not: not a reason
_GENERIC = re.compile(r"^Failed to start |: (Main process exited|Failed with result|Scheduled restart job|"
                      r"Start request repeated too quickly|Control process exited)")
JOURNAL_GROUPS = ("systemd-journal", "adm", "wheel")  # journalctl shows the system journal to these


def check_journal_access(ctx: Context) -> None:
    """Unprivileged journalctl silently shows only the caller's own lines ('-- No entries --'): say
    which right is missing instead."""
    if ctx.user or os.geteuid() == 0:
        return
    from ..systemd import _in_group

    states = [_in_group(g) for g in JOURNAL_GROUPS]
    if any(active for _listed, active in states):
        return
    if any(listed for listed, _active in states):
        raise PermissionDenied("reading gridbot's logs: your systemd-journal membership is not active yet; "
                               "log out and in again (or `newgrp systemd-journal`), or use sudo")
    raise PermissionDenied("reading gridbot's logs needs root (sudo) or membership of the systemd-journal group")


def journal_command(ctx: Context, names: list[str], *, follow: bool = False, lines: Optional[int] = None,
                    since: Optional[str] = None, priority: Optional[str] = None, grep: Optional[str] = None,
                    output: str = "short-iso") -> list[str]:
    """journalctl over the given instances (or all): exact ``-u`` semantics, no native deps."""
    exe = shutil.which("journalctl")
    if not exe:
        raise GridbotError("journalctl not found: gridbot logs needs systemd's journal")
    cmd = [exe, "--no-pager", "-o", output]
    if ctx.user:
        cmd.append("--user")
    units = [unit_name(n) for n in names] or [PATTERN]
    for u in units:
        cmd += ["-u", u]
    if follow:
        cmd.append("-f")
    if lines is not None:
        cmd += ["-n", str(lines)]
    if since:
        cmd += ["--since", since]
    if priority:
        cmd += ["-p", priority]
    if grep:
        cmd += ["--grep", grep]
    return cmd


def recent_log(ctx: Context, name: str, lines: int = 5) -> list[str]:
    try:
        cmd = journal_command(ctx, [name], lines=lines, output="short-iso")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (GridbotError, OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("-- ")]


def last_error(ctx: Context, name: str, since_s: float) -> Optional[str]:
    """The instance's last error line since ``since_s`` (epoch seconds): why a start or restart just
    failed, in the bot's own words (``not starting: ...``). None when there is none, or the caller
    may not read the journal (then the CLI points to ``gridbot logs``)."""
    import time

    try:
        check_journal_access(ctx)
        cmd = journal_command(ctx, [name], lines=10, since=f"@{int(since_s)}", priority="err", output="cat")
        for _attempt in range(3):  # journald may not have taken in the exiting bot's last line yet
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            lines = [ln.strip() for ln in out.stdout.splitlines()
                     if ln.strip() and not ln.startswith("-- ") and not _GENERIC.search(ln)]
            if lines:
                return lines[-1]
            time.sleep(0.2)
    except (GridbotError, OSError, subprocess.TimeoutExpired):
        pass
    return None
