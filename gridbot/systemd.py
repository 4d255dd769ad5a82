"""The one module that talks to systemd (over D-Bus, through pystemd).

Callers get plain dataclasses and ``gridbot.errors`` exceptions, never pystemd objects or bytes.
One ``Manager`` holds one bus connection for the whole command (pystemd opens a connection per
call when none is injected), calls systemd's Manager methods by their D-Bus names so the
systemd D-Bus documentation stays the reference, and waits for jobs with a JobRemoved match
installed *before* the jobs are queued (no race, no ``Subscribe()``, no second connection).
"""
from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ._units import PATTERN, PREFIX, TARGET, TEMPLATE, instance_of, unit_name
from .errors import GridbotError, InstanceNotFound, PermissionDenied, SystemdUnavailable, UsageError

DEST = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
MANAGER_IFACE = b"org.freedesktop.systemd1.Manager"
UNIT_IFACE = b"org.freedesktop.systemd1.Unit"
SERVICE_IFACE = b"org.freedesktop.systemd1.Service"
PROPS_IFACE = b"org.freedesktop.DBus.Properties"
UNSET = 2**64 - 1  # systemd's "no figure" for cgroup counters
JOB_TIMEOUT_S = 60.0
# the Service properties a list row shows (see Manager._row)
ROW_PROPS = (b"MainPID", b"ExecMainStartTimestamp", b"NRestarts", b"Result", b"ExecMainStatus", b"ExecMainCode",
             b"CPUUsageNSec", b"MemoryCurrent", b"TasksCurrent", b"StatusText")


OPS_GROUP = "gridbot-ops"
# Manager methods the polkit rule grants to gridbot-ops members (packaging/50-gridbot.rules).
OPS_METHODS = {"StartUnit": "start", "StopUnit": "stop", "RestartUnit": "restart", "ReloadUnit": "reload",
               "ResetFailedUnit": "reset-failed"}
ROOT_METHODS = {"EnableUnitFiles": "enable", "DisableUnitFiles": "disable", "Reload": "daemon-reload"}


def _in_group(group: str) -> tuple[bool, bool]:
    """(listed as a member, membership active in this process): a fresh member must log in again."""
    import grp
    import pwd

    try:
        g = grp.getgrnam(group)
    except KeyError:
        return False, False
    try:
        me = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        me = ""
    listed = me in g.gr_mem or pwd.getpwnam(me).pw_gid == g.gr_gid if me else False
    return listed, g.gr_gid in os.getgroups() or os.getgid() == g.gr_gid


def denied_message(method: str, unit: str = "") -> str:
    """Name the missing right for a refused call; never tell a gridbot-ops member to join it."""
    what = f"{OPS_METHODS.get(method) or ROOT_METHODS.get(method) or method}" + (f" {unit}" if unit else "")
    if method in OPS_METHODS and unit.startswith(PREFIX):
        listed, active = _in_group(OPS_GROUP)
        if active:
            return (f"permission denied: polkit refused to {what} although you are in '{OPS_GROUP}'; is the polkit "
                    f"rule installed (sudo ./packaging/install.sh) and polkit running? Or run with sudo")
        if listed:
            return (f"permission denied: to {what} your '{OPS_GROUP}' membership must be active: log out and in "
                    f"again (or `newgrp {OPS_GROUP}`), or run with sudo")
        return (f"permission denied: to {what} you need root (sudo) or membership of the '{OPS_GROUP}' group "
                f"(start/stop/restart/reload/reset-failed of gridbot@ units)")
    return f"permission denied: to {what} you need root (run with sudo)"


# sd-bus's negative errno when the bus socket cannot be opened: no socket, refused, no medium
_NO_BUS = (-errno.ENOENT, -errno.ECONNREFUSED, -errno.ENOMEDIUM)


@contextlib.contextmanager
def _dbus_errors(unit: str = "", method: str = "") -> Iterator[None]:
    """Translate pystemd's D-Bus errors into gridbot errors with one-line messages.

    Never show ``str()`` of a pystemd error: it appends a joke paragraph.
    """
    from pystemd import dbusexc

    try:
        yield
    except dbusexc.DBusBaseError as exc:
        raw = getattr(exc, "err_message", b"") or b""
        msg = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        code = getattr(exc, "errno", 0)
        if isinstance(exc, (dbusexc.DBusInteractiveAuthorizationRequiredError, dbusexc.DBusAccessDeniedError)):
            raise PermissionDenied(denied_message(method, unit)) from None
        if isinstance(exc, dbusexc.DBusNoSuchUnitError):
            raise InstanceNotFound(f"no such unit {unit}: {msg}" if unit else msg) from None
        if isinstance(exc, dbusexc.DBusFileNotFoundError) or (code in _NO_BUS and "Could not open" in msg):
            raise SystemdUnavailable(
                "cannot reach systemd: no D-Bus socket (is this a systemd host? for --user, is "
                "XDG_RUNTIME_DIR set and a user manager running?)"
            ) from None
        if isinstance(exc, dbusexc.DBusInvalidArgsError):
            raise UsageError(f"systemd refused the request: {msg}") from None
        raise GridbotError(f"systemd error (errno {code}): {msg}") from None


@dataclass(frozen=True)
class UnitRow:
    """One instance as a status table needs it. Counters are None where systemd has no figure."""

    name: str
    unit: str
    load_state: str
    active_state: str
    sub_state: str
    main_pid: int = 0
    since_us: int = 0
    n_restarts: int = 0
    result: str = ""
    exit_status: int = 0
    exit_code: str = ""
    cpu_ns: Optional[int] = None
    memory_bytes: Optional[int] = None
    tasks: Optional[int] = None
    status_text: str = ""
    enabled: bool = False
    fragment_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


# JobRemoved arrives on the connection that queued the job. pystemd keeps only a raw pointer to
# the callback (no INCREF): it must be a module-level plain function, or the process segfaults.
def _on_job_removed(msg: Any, error: Any = None, userdata: Any = None) -> None:
    msg.process_reply(False)
    _id, job_path, unit, result = msg.body
    userdata[job_path] = (unit.decode(), result.decode())


def _instances(units: list[str]) -> list[bytes]:
    """Instance units only: given the bare template, systemd acts on every instance
    (DisableUnitFiles of gridbot@.service unlinks them all)."""
    if not all(instance_of(u) for u in units):
        raise UsageError("refusing to act on the template's unit file: instance units only")
    return [u.encode() for u in units]


def _figure(value: Any) -> Optional[int]:
    return None if value is None or value == UNSET else int(value)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


class Manager:
    """A connection to the system (or per-user) service manager, for one CLI command.

    As pystemd's own objects take ``bus=``: an injected bus (already open; a fake in the unit
    tests) is used as it is and left open; without one, ``__enter__`` opens pystemd's ``DBus`` and
    ``__exit__`` closes it. The constructor does no I/O.
    """

    def __init__(self, user: bool = False, bus: Any = None) -> None:
        self.user = user
        self._given = bus
        self._bus: Any = None
        self._jobs: dict[bytes, tuple[str, str]] = {}

    def __enter__(self) -> "Manager":
        bus = self._given
        if bus is None:
            from pystemd.dbuslib import DBus

            if not self.user and not Path("/run/systemd/system").exists() and not os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"):
                raise SystemdUnavailable("systemd is not running on this host (no /run/systemd/system); gridbot needs systemd")
            bus = DBus(user_mode=self.user)
            with _dbus_errors():
                bus.open()
        try:
            with _dbus_errors():
                bus.match_signal(DEST, MANAGER_PATH, MANAGER_IFACE, b"JobRemoved", _on_job_removed, self._jobs)
        except BaseException:
            if self._given is None:
                bus.close()
            raise
        self._bus = bus
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bus is not None:
            if self._given is None:
                self._bus.close()
            self._bus = None

    # -- raw calls -------------------------------------------------------------------------
    def _call(self, method: bytes, signature: bytes = b"", *args: Any, unit: str = "") -> Any:
        from pystemd.dbuslib import apply_signature

        compiled = apply_signature(signature, list(args)) if signature else []
        with _dbus_errors(unit, method.decode()):
            return self._bus.call_method(DEST, MANAGER_PATH, MANAGER_IFACE, method, compiled).body

    def _get_all(self, unit: str, iface: bytes = b"") -> dict[str, Any]:
        from pystemd.dbuslib import apply_signature, path_encode

        path = path_encode(b"/org/freedesktop/systemd1/unit", unit.encode())
        with _dbus_errors(unit):
            body = self._bus.call_method(DEST, path, PROPS_IFACE, b"GetAll", apply_signature(b"s", [iface])).body
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in body.items()}

    def _get(self, unit: str, iface: bytes, names: tuple[bytes, ...]) -> dict[str, Any]:
        """Only the named properties, one Get each: about 3x cheaper than a GetAll of the Service
        interface (hundreds of properties decoded) for the ten that a table row needs."""
        from pystemd.dbuslib import apply_signature, path_encode

        path = path_encode(b"/org/freedesktop/systemd1/unit", unit.encode())
        out = {}
        with _dbus_errors(unit):
            for name in names:
                out[name.decode()] = self._bus.call_method(DEST, path, PROPS_IFACE, b"Get",
                                                           apply_signature(b"ss", [iface, name])).body
        return out

    # -- jobs ------------------------------------------------------------------------------
    def _queue(self, method: bytes, unit: str, mode: bytes = b"replace") -> bytes:
        return self._call(method, b"ss", unit.encode(), mode, unit=unit)

    def run_jobs(self, method: str, units: list[str], timeout: float = JOB_TIMEOUT_S,
                 on_done: Optional[Callable[[str, str], None]] = None,
                 on_wait: Optional[Callable[[list[str], float], None]] = None) -> dict[str, str]:
        """Queue ``method`` (StartUnit/StopUnit/RestartUnit/ReloadUnit) for all units at once, then wait.

        Returns unit -> job result (done, failed, timeout, canceled, dependency, skipped, or
        'timeout' when we stopped waiting). Queuing everything first lets systemd run the jobs in
        parallel instead of one after another. ``on_done(unit, result)`` is called the moment each
        job ends; ``on_wait(pending_units, elapsed_s)`` about every half second while some are left.
        """
        pending = {self._queue(method.encode(), u): u for u in units}
        return self._wait(pending, timeout, on_done, on_wait)

    def _wait(self, pending: dict[bytes, str], timeout: float,
              on_done: Optional[Callable[[str, str], None]] = None,
              on_wait: Optional[Callable[[list[str], float], None]] = None) -> dict[str, str]:
        results: dict[str, str] = {}
        start = time.monotonic()
        deadline = start + timeout
        while True:
            for path in [p for p in pending if p in self._jobs]:
                unit = pending.pop(path)
                results[unit] = self._jobs.pop(path)[1]
                if on_done is not None:
                    on_done(unit, results[unit])
            if not pending:
                return results
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if on_wait is not None:
                on_wait(list(pending.values()), time.monotonic() - start)
            with _dbus_errors():
                while not self._bus.process().is_empty():
                    pass
                if not any(p in self._jobs for p in pending):
                    self._bus.wait(int(min(left, 0.5) * 1e6))
        for unit in pending.values():
            results[unit] = "timeout"
            if on_done is not None:
                on_done(unit, "timeout")
        return results

    def stop_target(self, timeout: float = JOB_TIMEOUT_S) -> str:
        return self.run_jobs("StopUnit", [TARGET], timeout)[TARGET]

    def reset_failed(self, unit: str) -> None:
        self._call(b"ResetFailedUnit", b"s", unit.encode(), unit=unit)

    # -- unit files ------------------------------------------------------------------------
    def enable(self, units: list[str]) -> None:
        """Enable instances (symlinks into their [Install] targets), then reload."""
        self._call(b"EnableUnitFiles", b"asbb", _instances(units), False, False)
        self.reload()

    def disable(self, units: list[str]) -> None:
        self._call(b"DisableUnitFiles", b"asb", _instances(units), False)
        self.reload()

    def reload(self) -> None:
        """daemon-reload: synchronous; picks up new or changed unit files and drop-ins."""
        self._call(b"Reload")

    def template_loaded(self) -> bool:
        rows = self._call(b"ListUnitFilesByPatterns", b"asas", [], [TEMPLATE.encode()])
        return bool(rows)

    # -- reading ---------------------------------------------------------------------------
    def loaded_instances(self) -> list[str]:
        """Instance names of every gridbot@ unit systemd currently has loaded (any state)."""
        rows = self._call(b"ListUnitsByPatterns", b"asas", [], [PATTERN.encode()])
        names = [instance_of(_text(r[0])) for r in rows]
        return sorted(n for n in names if n)

    def active_states(self, names: list[str]) -> dict[str, str]:
        """name -> ActiveState, in one call (ListUnitsByNames): what ``start`` needs to say "already running"."""
        if not names:
            return {}
        listed = self._call(b"ListUnitsByNames", b"as", [unit_name(n, checked=False).encode() for n in names])
        return {instance_of(_text(row[0])) or _text(row[0]): _text(row[3]) for row in listed}

    def rows(self, names: list[str], enabled: set[str]) -> list[UnitRow]:
        """State, PID, restarts, accounting and status text for each name, in one connection.

        ListUnitsByNames loads never-started instances on demand (state inactive/dead), so a
        config that was never started still gets a row.
        """
        if not names:
            return []
        units = [unit_name(n, checked=False) for n in names]
        listed = self._call(b"ListUnitsByNames", b"as", [u.encode() for u in units])
        out = []
        for row in listed:
            unit = _text(row[0])
            name = instance_of(unit) or unit
            load, active, sub = _text(row[2]), _text(row[3]), _text(row[4])
            if load != "loaded":
                out.append(UnitRow(name, unit, load, active, sub, enabled=name in enabled))
                continue
            svc = self._get(unit, SERVICE_IFACE, ROW_PROPS)
            out.append(self._row(name, unit, load, active, sub, svc, name in enabled))
        return out

    def status(self, name: str, enabled: set[str]) -> UnitRow:
        """Everything ``gridbot status`` shows, from one GetAll over all interfaces."""
        unit = unit_name(name, checked=False)
        props = self._get_all(unit)
        return self._row(name, unit, _text(props.get("LoadState")), _text(props.get("ActiveState")),
                         _text(props.get("SubState")), props, name in enabled)

    @staticmethod
    def _row(name: str, unit: str, load: str, active: str, sub: str, p: dict[str, Any], enabled: bool) -> UnitRow:
        since = int(p.get("ExecMainStartTimestamp") or 0) if active in ("active", "reloading", "deactivating") else 0
        return UnitRow(
            name=name, unit=unit, load_state=load, active_state=active, sub_state=sub,
            main_pid=int(p.get("MainPID") or 0),
            since_us=since or int(p.get("StateChangeTimestamp") or 0),
            n_restarts=int(p.get("NRestarts") or 0),
            result=_text(p.get("Result")),
            exit_status=int(p.get("ExecMainStatus") or 0),
            exit_code=str(p.get("ExecMainCode") or ""),
            cpu_ns=_figure(p.get("CPUUsageNSec")),
            memory_bytes=_figure(p.get("MemoryCurrent")),
            tasks=_figure(p.get("TasksCurrent")),
            status_text=_text(p.get("StatusText")),
            enabled=enabled,
            fragment_path=_text(p.get("FragmentPath")),
            extra={"InvocationID": bytes(p.get("InvocationID") or []).hex(),
                   "StateChangeTimestamp": int(p.get("StateChangeTimestamp") or 0)},
        )
