"""gridbot.paths: the directory rules and the one atomic writer."""
from __future__ import annotations

import os
import stat

import pytest

from gridbot import paths


def test_write_atomic_replaces_whole_files_with_the_mode_asked(tmp_path):
    target = tmp_path / "a.json"
    paths.write_atomic(target, b"one", 0o600)
    paths.write_atomic(target, b"two", 0o644)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["a.json"]  # no temporary file left behind


def test_write_atomic_leaves_the_old_file_and_no_litter_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    paths.write_atomic(target, b"old")

    def boom(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        paths.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_user_and_system_directories(monkeypatch, tmp_path):
    monkeypatch.delenv("GRIDBOT_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CONFIGURATION_DIRECTORY", raising=False)
    monkeypatch.delenv("GRIDBOT_ACCOUNTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert paths.config_dir() == paths.SYSTEM_CONFIG_DIR
    assert paths.config_dir(user=True) == tmp_path / "cfg" / "gridbot"
    assert paths.state_root() == paths.SYSTEM_STATE_ROOT
    assert paths.service_state_dir("a", user=True) == tmp_path / "st" / "gridbot" / "a"
    assert paths.accounts_root(paths.state_root()) == paths.SYSTEM_STATE_ROOT / ".accounts"
    assert paths.dropin_dir("a", user=True) == tmp_path / "cfg" / "systemd" / "user" / "gridbot@a.service.d"
    assert paths.dropin_dir("a") == paths.SYSTEM_UNIT_DIRS[0] / "gridbot@a.service.d"


def test_a_dynamic_users_state_is_under_private(tmp_path):
    root = tmp_path / "lib" / "gridbot"
    root.mkdir(parents=True)
    assert paths.state_dir("a", root=root) == tmp_path / "lib" / "private" / "gridbot" / "a"
    (root / "old").mkdir()  # from before per-instance users: still in place
    assert paths.state_dir("old", root=root) == root / "old"
    assert paths.state_dir("a", user=True, root=root) == root / "a"
