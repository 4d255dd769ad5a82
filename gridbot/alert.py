"""``gridbot-alert@NAME.service`` (the instances' ``OnFailure=``).

``python -m gridbot.alert --check NAME`` (the unit's ExecCondition=) decides: NAME has failed for
good when the start limit stopped its restarts, or it refused its config (exit 78, which
``RestartPreventExitStatus=`` never restarts); then one line at priority crit, else one notice
line and the unit is skipped. ``python -m gridbot.alert NAME`` (ExecStart=) runs the hook. The hook, ``/etc/gridbot/alert`` if it is an executable regular file owned by
root and not writable by others, gets exactly one argument: the name, checked with gridbot's own
rule. The unit runs this as a throw-away unprivileged user in a sandbox; an operator who needs
root for the hook opts in with a drop-in (see README, Security).
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys

from ._units import check_name, unit_name
from .errors import UsageError
from .paths import ALERT_HOOK

HOOK = str(ALERT_HOOK)
HOOK_TIMEOUT_S = 50  # the unit's TimeoutStartSec is 60
EX_CONFIG = 78


def _props(unit: str) -> dict[str, str]:
    # the per-user alert unit sets GRIDBOT_USER=1 (packaging/user_units.py): its instance is the user manager's
    user = ["--user"] if os.environ.get("GRIDBOT_USER", "").lower() in ("1", "true", "yes") else []
    out = subprocess.run(["systemctl", *user, "show", unit, "-p", "Result", "-p", "ExecMainStatus", "-p", "NRestarts",
                          "-p", "StartLimitBurst", "-p", "ActiveState"],
                         capture_output=True, text=True, timeout=20, check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def failed_for_good(p: dict[str, str]) -> bool:
    """systemd 252 keeps the last run's result (exit-code) when the start limit then stops the
    restarts, so 'start limit reached' is also read from the restart count."""
    result, status = p.get("Result", ""), p.get("ExecMainStatus", "0")
    if result == "start-limit-hit":
        return True
    if result == "exit-code" and status == str(EX_CONFIG):
        return True
    try:
        burst, restarts = int(p.get("StartLimitBurst", "0")), int(p.get("NRestarts", "0"))
    except ValueError:
        return False
    return result not in ("", "success") and burst > 0 and restarts >= burst - 1


def _hook_ok(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and os.access(path, os.X_OK))


def _name(args: list[str]) -> str:
    if len(args) != 1:
        raise UsageError("expected exactly one instance name")
    return check_name(args[0])


def check(args: list[str]) -> int:
    """ExecCondition= (as root, "+": it asks systemd, which a dynamic user may not reach over
    D-Bus): exit 0 when NAME failed for good, 1 (the alert unit is skipped) otherwise."""
    try:
        name = _name(args)
    except UsageError as exc:
        print(f"<3>gridbot-alert: refusing to alert: {exc}", flush=True)
        return 2
    p = _props(unit_name(name))
    why = f"result {p.get('Result') or '?'}, exit status {p.get('ExecMainStatus') or '?'}, {p.get('NRestarts') or 0} restarts"
    if not failed_for_good(p):
        print(f"<5>gridbot instance {name} failed ({why}); not failed for good: no alert", flush=True)
        return 1
    print(f"<2>gridbot instance {name} FAILED ({why}): see gridbot status {name} and gridbot logs {name}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        return check(argv[1:])
    try:
        name = _name(argv)
    except UsageError as exc:
        print(f"<3>gridbot-alert: refusing to alert: {exc}", flush=True)
        return 2
    if not os.path.lexists(HOOK):
        return 0
    if not _hook_ok(HOOK):
        print(f"<3>gridbot-alert: {HOOK} not run for {name}: it must be an executable file owned by root, "
              "not writable by group or others", flush=True)
        return 1
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    try:
        return subprocess.run([HOOK, name], env=env, stdin=subprocess.DEVNULL, timeout=HOOK_TIMEOUT_S,
                              check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"<3>gridbot-alert: {HOOK} {name} still running after {HOOK_TIMEOUT_S} s; stopped", flush=True)
        return 1
    except OSError as exc:
        print(f"<3>gridbot-alert: cannot run {HOOK}: {exc.strerror}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
