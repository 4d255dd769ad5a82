"""Instance name <-> unit name. Pure; no systemd access.

We accept only names that systemd's escaping leaves unchanged ([A-Za-z0-9_-] plus inner dots), so
the instance name, the unit name's instance part, ``%i``, the config file stem and the state
directory are one and the same string: nothing can be smuggled through escaping, and
``/etc/gridbot/NAME.json`` can never point outside ``/etc/gridbot``.
"""
from __future__ import annotations

import re

from .errors import UsageError

TEMPLATE = "gridbot@.service"
TARGET = "gridbot.target"
PREFIX = "gridbot@"
SUFFIX = ".service"
MAX_NAME = 64
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe instance name, else raise UsageError saying why."""
    shown = name.encode("unicode_escape").decode("ascii")
    if not name:
        raise UsageError("instance name is empty")
    if len(name) > MAX_NAME:
        raise UsageError(f"instance name is longer than {MAX_NAME} characters: '{shown[:40]}…'")
    if ".." in name or not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid instance name '{shown}': use letters, digits, '_' and '-' (not first) "
            f"(dots allowed inside), at most {MAX_NAME} characters"
        )
    return name


def unit_name(name: str) -> str:
    return f"{PREFIX}{check_name(name)}{SUFFIX}"


def instance_of(unit: str) -> str | None:
    """``gridbot@x.service`` -> ``x``; anything else -> None."""
    if unit.startswith(PREFIX) and unit.endswith(SUFFIX):
        inner = unit[len(PREFIX):-len(SUFFIX)]
        return inner or None
    return None
