"""The exit-code table, config error messages (all at once, suggestions, patterns in words), --user
anywhere, permission messages naming the missing right. No systemd needed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridbot import errors
from gridbot.cli import _hoist_user
from gridbot.config import parse_config, suggest_key
from gridbot.errors import ConfigError

GOOD = {"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10, "qty_per_level": 0.1}
GRIDBOT = [sys.executable, "-m", "gridbot"]


def run(args, cfg_dir: Path, **env):
    e = {**os.environ, "GRIDBOT_CONFIG_DIR": str(cfg_dir), **env}
    e.pop("CONFIGURATION_DIRECTORY", None)
    return subprocess.run(GRIDBOT + args, capture_output=True, text=True, env=e, timeout=60)


def error_of(cfg) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(json.dumps(cfg) if not isinstance(cfg, str) else cfg, "x.json", feasible=True)
    return str(exc.value)


# -- the one table --------------------------------------------------------------------------------
def test_every_error_class_has_its_code_in_the_table():
    cli_codes = {code for code, who, _ in errors.EXIT_CODES if who == "cli"}
    for cls in (errors.UsageError, errors.PermissionDenied, errors.InstanceNotFound, errors.ConfigError,
                errors.NotRunning, errors.SystemdUnavailable, errors.JobFailed, errors.CredentialsError):
        assert cls.exit_code in cli_codes, cls
    distinct = [errors.UsageError, errors.PermissionDenied, errors.InstanceNotFound, errors.ConfigError]
    assert len({c.exit_code for c in distinct}) == len(distinct)  # usage, permission, not found, config
    assert (errors.UsageError.exit_code, errors.PermissionDenied.exit_code, errors.InstanceNotFound.exit_code,
            errors.ConfigError.exit_code, errors.NotRunning.exit_code) == (2, 4, 5, 6, 7)


def test_the_bots_codes_match_the_runner_and_the_unit():
    from gridbot import runner

    bot = {code for code, who, _ in errors.EXIT_CODES if who == "bot"}
    assert {runner.EX_OK, runner.EX_FAIL, runner.EX_CONFIG} == bot
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "gridbot@.service").read_text()
    assert f"RestartPreventExitStatus={errors.EXIT_BOT_CONFIG}" in unit


def test_help_and_readme_show_the_table(tmp_path):
    out = run(["--help"], tmp_path).stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code, _who, meaning in errors.EXIT_CODES:
        assert f"{code:>4}" in out and meaning[:30] in out.replace("\n", " "), (code, meaning)
        assert meaning in readme, meaning


# -- config messages --------------------------------------------------------------------------------
@pytest.mark.parametrize("path,hint", [
    (("level",), "did you mean levels?"),
    (("paper", "start_price"), "did you mean paper.price.start_price?"),
    (("tick_size",), "did you mean paper.tick_size?"),
    (("paper", "initial_qoute"), "did you mean paper.initial_quote?"),
    (("uper_price",), "did you mean upper_price?"),
    (("paper", "price", "levels"), "did you mean levels?"),
])
def test_unknown_keys_get_the_nearest_key(path, hint):
    assert hint in suggest_key(path)


def test_no_suggestion_for_nonsense():
    assert suggest_key(("zzzzqqq",)) == ""


def test_symbol_pattern_in_words_not_a_regex():
    msg = error_of({**GOOD, "symbol": "sol-usdc"})
    assert "BASE_QUOTE" in msg and "^[A-Z" not in msg and "pattern" not in msg


def test_every_error_at_once_across_stages():
    # a field error, an unknown key, a cross-field error and a feasibility problem, all in one message
    cfg = {**GOOD, "level": 3, "fee_rate": "abc", "lower_price": 300, "upper_price": 200}
    msg = error_of(cfg)
    assert "level: unknown key; did you mean levels?" in msg
    assert "fee_rate" in msg and "lower_price (300) must be below upper_price (200)" in msg
    cfg = {**GOOD, "lvels": 1, "symbol": "BTC_USDC", "lower_price": 60000, "upper_price": 70000,
           "qty_per_level": "0.001"}
    msg = error_of(cfg)
    assert "did you mean levels?" in msg and "outside the grid" in msg and "below the market minimum" in msg


def test_a_set_aside_key_is_not_blamed_through_its_default():
    # qty_per_level is bad: the "exactly one of" rule must not then complain about its absence
    msg = error_of({**GOOD, "qty_per_level": -1})
    assert "qty_per_level" in msg and "exactly one of" not in msg


def test_validate_cli_reports_all_errors_in_one_line(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({**GOOD, "level": 3, "paper": {"start_price": 1}}))
    r = run(["validate", "a"], tmp_path)
    assert r.returncode == 6
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean levels?" in lines[0] and "paper.price.start_price" in lines[0]


def test_validate_unknown_instance_is_5_and_a_missing_dash_c_is_usage(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps({**GOOD, "paper": {"price": {"start_price": 150}}}))
    r = run(["validate", "good", "ghost"], tmp_path)
    assert r.returncode == 5 and "good: ok" in r.stdout and "no such instance 'ghost'" in r.stderr
    r = run(["validate", "-c", str(tmp_path / "nothere.json")], tmp_path)
    assert r.returncode == 2 and "no such config file" in r.stderr


def test_validate_infeasible_is_6(tmp_path):
    (tmp_path / "btc.json").write_text(json.dumps({**GOOD, "symbol": "BTC_USDC", "lower_price": 60000,
                                                   "upper_price": 70000, "qty_per_level": "0.001",
                                                   "paper": {"price": {"start_price": 65000}}}))
    r = run(["validate", "btc"], tmp_path)
    assert r.returncode == 6 and "below the market minimum 0.01" in r.stderr


# -- --user anywhere -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv,want", [
    (["list", "--user"], ["--user", "list"]),
    (["--user", "list"], ["--user", "list"]),
    (["start", "a", "--user", "b"], ["--user", "start", "a", "b"]),
    (["stop", "--", "--user"], ["stop", "--", "--user"]),
    (["status", "x"], ["status", "x"]),
])
def test_user_flag_is_hoisted(argv, want):
    assert _hoist_user(argv) == want


def test_user_after_the_command_and_env_default_reach_the_user_config_dir(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "gridbot").mkdir(parents=True)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    e = {**os.environ, **env}
    e.pop("GRIDBOT_CONFIG_DIR", None)
    e.pop("CONFIGURATION_DIRECTORY", None)
    for args, extra in ((["validate", "--all", "--user"], {}), (["validate", "--all"], {"GRIDBOT_USER": "1"})):
        r = subprocess.run(GRIDBOT + args, capture_output=True, text=True, env={**e, **extra}, timeout=60)
        assert r.returncode == 2 and str(home / ".config" / "gridbot") in r.stderr, r.stderr


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


# -- progress line ---------------------------------------------------------------------------------
class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_line_only_on_a_terminal_and_cleared_before_results(monkeypatch):
    from gridbot.cli import commands

    err = _Tty(True)
    monkeypatch.setattr(sys, "stderr", err)
    p = commands._Progress("starting")
    p.waiting(["a", "b"], 0.5)  # under a second: nothing yet
    assert err.text == ""
    p.waiting(["a", "b", "c", "d"], 12.2)
    assert "starting: waiting for a, b, c and 1 more (12s)" in err.text
    p.clear()
    assert err.text.endswith("\r\033[K") and not p.shown
    quiet = _Tty(False)
    monkeypatch.setattr(sys, "stderr", quiet)
    q = commands._Progress("starting")
    q.waiting(["a"], 30)
    q.clear()
    assert quiet.text == ""
