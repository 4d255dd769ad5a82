"""gridbot/config.py: config validation and its messages (every error at once, suggestions, patterns in
words), the files root is handed (read once, no symlink/FIFO/device, size cap) and what the service can read."""
from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

from gridbot import config as cfgmod
from gridbot.config import parse_config, suggest_key
from gridbot.errors import ConfigError

from .conftest import GOOD, parse


def test_valid_config_and_decimal_money():
    cfg = parse()
    assert cfg.lower_price == Decimal("100") and cfg.exchange == "paper"


@pytest.mark.parametrize("over, needle", [
    ({"uper_price": 1}, "uper_price: unknown key"),
    ({"lower_price": 300}, "must be below upper_price"),
    ({"levels": 1}, "levels:"),
    ({"levels": 501}, "levels:"),
    ({"qty_per_level": 0}, "qty_per_level:"),
    ({"investment": 1000}, "exactly one of"),
    ({"symbol": "sol/usdc"}, "symbol:"),
    ({"stop_loss": 150}, "stop_loss"),
    ({"take_profit": 150}, "take_profit"),
    ({"upper_price": 101, "levels": 50}, "round-trip fee"),
    ({"web_port": 80}, "web_port:"),
    ({"exchange": "binance"}, "exchange:"),
])
def test_invalid_configs_name_the_field(over, needle):
    with pytest.raises(ConfigError) as exc:
        parse(**over)
    msg = str(exc.value)
    assert msg.startswith("t.json: ") and needle in msg and "\n" not in msg


@pytest.mark.parametrize("text", ["{", "", "[]", "null", '{"lower_price": NaN}', '{"a": Infinity}'])
def test_malformed_json(text):
    with pytest.raises(ConfigError):
        cfgmod.parse_config(text, "t.json")


def test_nan_and_infinity_refused_even_as_strings():
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ConfigError):
            parse(lower_price=bad)


def test_huge_file_refused():
    with pytest.raises(ConfigError, match="larger than"):
        cfgmod.parse_config(" " * (cfgmod.MAX_CONFIG_BYTES + 1), "big.json")


def test_schema_allows_dollar_schema_key():
    assert "$schema" in cfgmod.schema()["properties"]
    parse(**{"$schema": "https://gridbot.invalid/schema/config.json"})


def test_list_names_ignores_unsafe_stems(tmp_path):
    for stem in ("good", "bad name", ".hidden", "also-good"):
        (tmp_path / f"{stem}.json").write_text("{}")
    (tmp_path / "x.json.example").write_text("{}")
    assert cfgmod.list_names(tmp_path) == ["also-good", "good"]


@pytest.mark.parametrize("url, ok", [
    ("https://api.backpack.exchange", True), ("http://127.0.0.1:8080", True), ("http://[::1]:9000/x", True),
    ("http://localhost:1234", True), ("http://api.backpack.exchange", False), ("http://169.254.169.254", False),
    ("http://127.0.0.1.evil.example", False), ("https://user:pw@api.backpack.exchange", False),
    ("ftp://api.backpack.exchange", False), ("http://10.0.0.1", False)])
def test_base_url_https_unless_loopback(url, ok):
    over = {"exchange": "backpack", "backpack": {"base_url": url}}
    if ok:
        parse(**over)
    else:
        with pytest.raises(ConfigError, match="base_url"):
            parse(**over)


def test_read_regular_refuses_symlink_fifo_dir_device_and_big_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    assert cfgmod.read_regular(good) == good.read_bytes()
    (tmp_path / "link.json").symlink_to(good)
    with pytest.raises(ConfigError, match="is a symlink"):
        cfgmod.read_regular(tmp_path / "link.json")
    os.mkfifo(tmp_path / "fifo.json")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="not a regular file"):  # never blocks waiting for a writer
        cfgmod.read_regular(tmp_path / "fifo.json")
    assert time.monotonic() - t0 < 1
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="directory"):
        cfgmod.read_regular(tmp_path / "dir.json")
    with pytest.raises(ConfigError, match="not a regular file"):
        cfgmod.read_regular(Path("/dev/zero"))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (cfgmod.MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        cfgmod.read_regular(big)
    with pytest.raises(ConfigError, match="no such config file"):
        cfgmod.read_regular(tmp_path / "missing.json")


def test_service_must_be_able_to_read_the_config():
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp root is 0700: nobody else could reach it
    request_cleanup = lambda: shutil.rmtree(tmp_path, ignore_errors=True)  # noqa: E731
    p = tmp_path / "c.json"
    p.write_text("{}")
    os.chmod(tmp_path, 0o755)
    os.chmod(p, 0o600)  # copied with umask 077
    with pytest.raises(ConfigError, match="cannot read it.*chmod 0644"):
        cfgmod.service_readable(p)
    os.chmod(p, 0o644)
    cfgmod.service_readable(p)
    os.chmod(tmp_path, 0o700)
    try:
        with pytest.raises(ConfigError, match="cannot reach it"):
            cfgmod.service_readable(p)
    finally:
        os.chmod(tmp_path, 0o755)
        request_cleanup()


def error_of(cfg) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(json.dumps(cfg) if not isinstance(cfg, str) else cfg, "x.json", feasible=True)
    return str(exc.value)


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
