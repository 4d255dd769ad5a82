"""Shared test setup. e2e tests boot a real systemd; under CI=true they must run, never skip."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
    if IN_CI and config.getoption("-m") and "not e2e" in config.getoption("-m"):
        raise pytest.UsageError("CI=true: the real-systemd (e2e) tests may not be deselected")
