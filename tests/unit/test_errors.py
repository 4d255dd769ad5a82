"""gridbot/errors.py: the one exit-code table, in the error classes, the bot, the unit, --help and the README."""
from __future__ import annotations

from pathlib import Path

from gridbot import errors

from .conftest import run


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
