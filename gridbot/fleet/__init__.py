"""Fleet operations: what each CLI command does, between the config directory and systemd.

The CLI parses and prints; this package decides. Every check on user input (names, configs,
clashes) happens here *before* the first D-Bus call, so a bad request changes nothing. By job:

- ``context``    which manager and directories (system or ``--user``); names; the file writer
- ``configs``    config installation: read once, validate, clash-check, install; ``validate --all``
- ``dropins``    a live instance's credentials and the unit drop-in that loads them
- ``lifecycle``  preflight, jobs queued together, and what systemd says of each instance
- ``removal``    ``rm`` and ``reset``
- ``journal``    ``logs``: journalctl, and which right is missing to read it

Callers use ``fleet.X``; the names below are the surface.
"""
from __future__ import annotations

from .configs import (NEW_CONFIG, Incoming, change_plans, check_clashes, configured, edit_config, install,
                      load_all, read_incoming, require_configs, require_files, saved_grid, try_load,
                      unreadable_state, validate, validate_report, ValidateReport)
from .context import Context, resolve, valid_names
from .dropins import (LIVE_DENY, LIVE_DROPIN, check_credentials, has_live_dropin, live_dropin, remove_credentials,
                      set_credentials)
from .journal import JOURNAL_GROUPS, check_journal_access, journal_command, last_error, recent_log
from .lifecycle import (JobOutcome, active, all_names, cleanup, enable, enabled_instances, ensure_template, figures,
                        figures_dir, info, instances_in_state, known, preflight, records, require_known, rows, run_jobs, status,
                        stop_all)
from .removal import RUNNING_STATES, ResetPlan, check_can_remove, remove, reset_apply, reset_plan

__all__ = [
    "NEW_CONFIG", "Incoming", "change_plans", "check_clashes", "configured", "edit_config", "install", "load_all",
    "read_incoming", "require_configs", "require_files", "saved_grid", "try_load", "unreadable_state", "validate",
    "validate_report", "ValidateReport",
    "Context", "resolve", "valid_names",
    "LIVE_DENY", "LIVE_DROPIN", "check_credentials", "has_live_dropin", "live_dropin", "remove_credentials",
    "set_credentials",
    "JOURNAL_GROUPS", "check_journal_access", "journal_command", "last_error", "recent_log",
    "JobOutcome", "active", "all_names", "cleanup", "enable", "ensure_template", "figures", "figures_dir",
    "info", "enabled_instances", "instances_in_state", "known", "records", "preflight", "require_known", "rows", "run_jobs", "status", "stop_all",
    "RUNNING_STATES", "ResetPlan", "check_can_remove", "remove", "reset_apply", "reset_plan",
]
