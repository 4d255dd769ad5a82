"""``gridbot.systemd.Manager`` against a fake bus: error mapping, job waiting, time-outs.

No systemd, no D-Bus and no pystemd needed (the host's venv has no pystemd; the container tests in
tests/e2e drive the real one): the binding's error classes and signature compiler are stood in by
a small fake ``pystemd`` package, and ``Manager(bus=FakeBus())`` takes the bus as pystemd's own
objects take ``bus=``.
"""
from __future__ import annotations

import errno
import sys
import time
import types

import pytest

from gridbot import systemd
from gridbot.errors import GridbotError, InstanceNotFound, PermissionDenied, SystemdUnavailable, UsageError


class DBusBaseError(Exception):
    def __init__(self, code: int, message: bytes) -> None:
        super().__init__(message)
        self.errno = code
        self.err_message = message


def _cls(name: str) -> type:
    return type(name, (DBusBaseError,), {})


@pytest.fixture(autouse=True)
def fake_pystemd(monkeypatch):
    exc = types.ModuleType("pystemd.dbusexc")
    exc.DBusBaseError = DBusBaseError
    for name in ("DBusInteractiveAuthorizationRequiredError", "DBusAccessDeniedError", "DBusNoSuchUnitError",
                 "DBusFileNotFoundError", "DBusInvalidArgsError"):
        setattr(exc, name, _cls(name))
    lib = types.ModuleType("pystemd.dbuslib")
    lib.apply_signature = lambda sig, args: list(args)
    lib.path_encode = lambda prefix, s: prefix + b"/" + s
    pkg = types.ModuleType("pystemd")
    pkg.dbusexc, pkg.dbuslib = exc, lib
    monkeypatch.setitem(sys.modules, "pystemd", pkg)
    monkeypatch.setitem(sys.modules, "pystemd.dbusexc", exc)
    monkeypatch.setitem(sys.modules, "pystemd.dbuslib", lib)
    return exc


class Reply:
    def __init__(self, body) -> None:
        self.body = body


class Signal:
    def __init__(self, body) -> None:
        self.body = body

    def process_reply(self, _flag: bool) -> None:
        pass


class Empty:
    def __init__(self, empty: bool) -> None:
        self._empty = empty

    def is_empty(self) -> bool:
        return self._empty


class FakeBus:
    """Answers Manager calls from ``answers`` (method -> body or exception); a queued job ends
    (JobRemoved) after ``delays[unit]`` process() rounds, or never if the unit is in ``hang``."""

    def __init__(self, answers=None, results=None, hang=(), delays=None) -> None:
        self.answers = answers or {}
        self.results = results or {}
        self.hang = set(hang)
        self.delays = delays or {}
        self.calls: list[tuple[bytes, list]] = []
        self.signals: list[tuple[int, tuple]] = []
        self.callback = None
        self.userdata = None
        self.closed = False
        self.waited = 0

    def match_signal(self, dest, path, iface, member, callback, userdata) -> None:
        assert member == b"JobRemoved"
        self.callback, self.userdata = callback, userdata

    def call_method(self, dest, path, iface, method, args):
        self.calls.append((method, args))
        answer = self.answers.get(method)
        if isinstance(answer, BaseException):
            raise answer
        if method in (b"StartUnit", b"StopUnit", b"RestartUnit", b"ReloadUnit"):
            unit = args[0].decode()
            job = f"/org/freedesktop/systemd1/job/{len(self.calls)}".encode()
            if unit not in self.hang:
                self.signals.append((self.delays.get(unit, 0), (len(self.calls), job, unit.encode(),
                                                                 self.results.get(unit, "done").encode())))
            return Reply(job)
        return Reply(answer)

    def process(self) -> Empty:
        due = [s for s in self.signals if s[0] <= 0]
        self.signals = [(d - 1, b) for d, b in self.signals if d > 0]
        if due:
            self.callback(Signal(due[0][1]), None, self.userdata)
            self.signals += [(0, b) for _d, b in due[1:]]
            return Empty(False)
        return Empty(True)

    def wait(self, usec: int) -> None:
        self.waited += 1
        time.sleep(min(usec / 1e6, 0.01))

    def close(self) -> None:
        self.closed = True


# -- error mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, code, message, expected", [
    ("DBusAccessDeniedError", -errno.EACCES, b"Access denied", PermissionDenied),
    ("DBusInteractiveAuthorizationRequiredError", -errno.EACCES, b"Interactive", PermissionDenied),
    ("DBusNoSuchUnitError", -errno.ENOENT, b"Unit gridbot@x.service not loaded.", InstanceNotFound),
    ("DBusFileNotFoundError", -errno.ENOENT, b"no socket", SystemdUnavailable),
    ("DBusInvalidArgsError", -errno.EINVAL, b"bad mode", UsageError),
    ("DBusBaseError", -errno.ENOENT, b"Could not open bus", SystemdUnavailable),
    ("DBusBaseError", -errno.ECONNREFUSED, b"Could not open bus", SystemdUnavailable),
    ("DBusBaseError", -errno.EIO, b"something else", GridbotError),
])
def test_error_mapping(fake_pystemd, cls, code, message, expected):
    err = getattr(fake_pystemd, cls)(code, message)
    with systemd.Manager(bus=FakeBus({b"ResetFailedUnit": err})) as m:
        with pytest.raises(expected) as info:
            m.reset_failed("gridbot@x.service")
    assert type(info.value) is expected
    text = str(info.value)
    assert "\n" not in text
    if expected is GridbotError:
        assert f"errno {code}" in text and "something else" in text


def test_permission_message_names_the_right(fake_pystemd, monkeypatch):
    monkeypatch.setattr(systemd, "_in_group", lambda g: (False, False))
    bus = FakeBus({b"StartUnit": fake_pystemd.DBusAccessDeniedError(-errno.EACCES, b"denied")})
    with systemd.Manager(bus=bus) as m, pytest.raises(PermissionDenied, match="gridbot-ops"):
        m.run_jobs("StartUnit", ["gridbot@a.service"], timeout=1)
    bus = FakeBus({b"EnableUnitFiles": fake_pystemd.DBusAccessDeniedError(-errno.EACCES, b"denied")})
    with systemd.Manager(bus=bus) as m, pytest.raises(PermissionDenied, match=r"to enable you need root"):
        m.enable(["gridbot@a.service"])


def test_template_is_never_acted_on():
    bus = FakeBus()
    with systemd.Manager(bus=bus) as m, pytest.raises(UsageError, match="instance units only"):
        m.disable(["gridbot@.service"])
    assert bus.calls == []


# -- jobs ----------------------------------------------------------------------------------------
def test_jobs_are_queued_together_and_reported_as_they_end():
    bus = FakeBus(results={"gridbot@b.service": "failed"}, delays={"gridbot@a.service": 3})
    seen = []
    with systemd.Manager(bus=bus) as m:
        out = m.run_jobs("StartUnit", ["gridbot@a.service", "gridbot@b.service"], timeout=5,
                         on_done=lambda u, r: seen.append((u, r)))
    assert [c[0] for c in bus.calls] == [b"StartUnit", b"StartUnit"]  # both queued before any wait
    assert out == {"gridbot@a.service": "done", "gridbot@b.service": "failed"}
    assert seen == [("gridbot@b.service", "failed"), ("gridbot@a.service", "done")]  # the quick one first


def test_a_job_that_never_ends_times_out():
    bus = FakeBus(hang={"gridbot@slow.service"})
    seen, waits = [], []
    t0 = time.monotonic()
    with systemd.Manager(bus=bus) as m:
        out = m.run_jobs("StopUnit", ["gridbot@fast.service", "gridbot@slow.service"], timeout=0.2,
                         on_done=lambda u, r: seen.append((u, r)), on_wait=lambda p, s: waits.append(list(p)))
    assert time.monotonic() - t0 < 2
    assert out == {"gridbot@fast.service": "done", "gridbot@slow.service": "timeout"}
    assert seen[-1] == ("gridbot@slow.service", "timeout")
    assert waits and waits[-1] == ["gridbot@slow.service"]


def test_stop_target_is_one_job():
    bus = FakeBus()
    with systemd.Manager(bus=bus) as m:
        assert m.stop_target(timeout=1) == "done"
    assert bus.calls == [(b"StopUnit", [b"gridbot.target", b"replace"])]


# -- the bus itself ------------------------------------------------------------------------------
def test_an_injected_bus_is_left_open():
    bus = FakeBus()
    with systemd.Manager(bus=bus):
        pass
    assert bus.closed is False and bus.callback is not None


def test_reading_rows_uses_unit_names():
    bus = FakeBus({b"ListUnitsByNames": [(b"gridbot@a.service", b"", b"not-found", b"inactive", b"dead")],
                   b"ListUnitsByPatterns": [(b"gridbot@b.service",), (b"other.service",)],
                   b"ListUnitFilesByPatterns": []})
    with systemd.Manager(bus=bus) as m:
        rows = m.rows(["a"], {"a"})
        assert m.loaded_instances() == ["b"]
        assert m.template_loaded() is False
    assert rows[0].unit == "gridbot@a.service" and rows[0].enabled and rows[0].load_state == "not-found"
    assert bus.calls[0] == (b"ListUnitsByNames", [[b"gridbot@a.service"]])
    assert bus.calls[2] == (b"ListUnitFilesByPatterns", [[], [b"gridbot@.service"]])


def test_a_missing_template_is_its_own_error():
    from gridbot import fleet
    from gridbot.errors import NotInstalled

    with systemd.Manager(bus=FakeBus({b"ListUnitFilesByPatterns": []})) as m:
        with pytest.raises(NotInstalled, match=r"gridbot@\.service is not installed: run `sudo \./packaging/install\.sh`"):
            fleet.ensure_template(m)
    assert NotInstalled.exit_code == 1
    with systemd.Manager(bus=FakeBus({b"ListUnitFilesByPatterns": [(b"/etc/systemd/system/gridbot@.service", b"static")]})) as m:
        fleet.ensure_template(m)


# -- permission messages ---------------------------------------------------------------------------
def test_denied_message_names_the_right(monkeypatch):
    from gridbot import systemd

    monkeypatch.setattr(systemd, "_in_group", lambda g: (False, False))
    msg = systemd.denied_message("StartUnit", "gridbot@a.service")
    assert "root (sudo) or membership of the 'gridbot-ops' group" in msg
    assert "root" in systemd.denied_message("EnableUnitFiles") and "gridbot-ops" not in systemd.denied_message(
        "EnableUnitFiles")
    monkeypatch.setattr(systemd, "_in_group", lambda g: (True, True))  # a member: never "join gridbot-ops"
    msg = systemd.denied_message("StartUnit", "gridbot@a.service")
    assert "membership of" not in msg and "join" not in msg and "polkit" in msg
    monkeypatch.setattr(systemd, "_in_group", lambda g: (True, False))
    assert "log out and in" in systemd.denied_message("RestartUnit", "gridbot@a.service")
