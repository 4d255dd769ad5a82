"""Instance name <-> unit name. Pure; no systemd access.

We accept only names that systemd's escaping leaves unchanged and that make a valid user name
behind ``gridbot-`` ([A-Za-z0-9_] then [A-Za-z0-9_-], at most 23 characters), so the instance
name, the unit name's instance part, ``%i``, the config file stem, the state directory and the
instance's own dynamic user (``User=gridbot-%i``, ``DynamicUser=yes``: systemd refuses user names
with dots or over 31 characters) are one and the same string: nothing can be smuggled through
escaping, and ``/etc/gridbot/NAME.json`` can never point outside ``/etc/gridbot``.
packaging/50-gridbot.rules repeats this rule for polkit.
"""
from __future__ import annotations

import re

from .errors import UsageError

TEMPLATE = "gridbot@.service"
TARGET = "gridbot.target"
PREFIX = "gridbot@"
SUFFIX = ".service"
PATTERN = f"{PREFIX}*{SUFFIX}"  # every instance, for ListUnitsByPatterns and journalctl -u
MAX_NAME = 23  # "gridbot-" + name: a user name of at most 31 characters
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
# gridbot-NAME must not be a static user: systemd would run the instance as that user instead of a
# dynamic one. `gridbot-web` is the dashboard's (packaging/sysusers.d), so `web` is no instance name.
RESERVED = frozenset({"web"})


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe instance name, else raise UsageError saying why.

    The message never repeats the name (a secret pasted in the wrong place must not be echoed):
    it shows its length or the first character that is not allowed.
    """
    rule = f"use letters, digits, '_' and '-' (not first), at most {MAX_NAME} characters"
    if not name:
        raise UsageError("instance name is empty")
    if len(name) > MAX_NAME:
        raise UsageError(f"instance name is longer than {MAX_NAME} characters ({len(name)}): {rule}")
    if not _NAME.fullmatch(name):
        bad = name[0] if name[0] == "-" else next((c for c in name if not (c.isascii() and (c.isalnum() or c in "_-"))), name[0])
        shown = bad.encode("unicode_escape").decode("ascii")
        where = " first" if bad == "-" else ""
        raise UsageError(f"invalid instance name: '{shown}' is not allowed{where}: {rule}")
    if name in RESERVED:
        raise UsageError(f"instance name '{name}' is reserved: gridbot-{name} is the dashboard's own user")
    return name


def unit_name(name: str, *, checked: bool = True) -> str:
    """``x`` -> ``gridbot@x.service``, the one place a unit name is spelled. ``checked=False`` only
    for names read back from systemd (a unit someone else loaded), to name it, never to act on it."""
    return f"{PREFIX}{check_name(name) if checked else name}{SUFFIX}"


def instance_of(unit: str) -> str | None:
    """``gridbot@x.service`` -> ``x``; anything else -> None."""
    if unit.startswith(PREFIX) and unit.endswith(SUFFIX):
        inner = unit[len(PREFIX):-len(SUFFIX)]
        return inner or None
    return None
