"""Pure checks: instance names, config validation messages, clash detection, rendering."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gridbot import config as cfgmod
from gridbot._units import check_name, instance_of, unit_name
from gridbot.cli import _render
from gridbot.errors import ConfigError, UsageError
from gridbot.fleet import check_clashes

GOOD = {"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10, "qty_per_level": 0.1}


@pytest.mark.parametrize("name", ["bp_sol_01", "a", "A-b_c", "x.y", "9lives", "a" * 64])
def test_good_names_round_trip(name):
    assert instance_of(unit_name(name)) == name


@pytest.mark.parametrize("name", ["", "a/b", "..", "a..b", ".x", "x.", "-x", "a b", "x@y", "x*", "x?", "[x]", "x\\y",
                                  "naïve", "x\ny", "a" * 65, "$(id)", "x:y", "%i"])
def test_bad_names_rejected(name):
    with pytest.raises(UsageError) as exc:
        check_name(name)
    assert "\n" not in str(exc.value)


def parse(**over):
    return cfgmod.parse_config(json.dumps({**GOOD, **over}), "t.json")


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


def test_clashes_port_and_live_account_symbol():
    a, b = parse(web_port=9000), parse(web_port=9000)
    with pytest.raises(ConfigError, match="web_port 9000"):
        check_clashes({"a": a, "b": b})
    live = dict(GOOD, exchange="backpack")
    with pytest.raises(ConfigError, match="both trade SOL_USDC"):
        check_clashes({"x": parse(**live), "y": parse(**live)})
    other_account = dict(live, backpack={"account": "sub2"})
    check_clashes({"x": parse(**live), "y": parse(**other_account)})
    check_clashes({"p": parse(), "q": parse()})  # paper accounts are per instance


def test_list_names_ignores_unsafe_stems(tmp_path):
    for stem in ("good", "bad name", ".hidden", "also-good"):
        (tmp_path / f"{stem}.json").write_text("{}")
    (tmp_path / "x.json.example").write_text("{}")
    assert cfgmod.list_names(tmp_path) == ["also-good", "good"]


def test_render_never_prints_uint64_max():
    assert _render.bytes_h(None) == "n/a" and _render.cpu_h(None) == "n/a"
    assert _render.bytes_h(5 * 1024 * 1024) == "5.0M"
    from gridbot.systemd import _figure
    assert _figure(2**64 - 1) is None and _figure(5) == 5


def test_live_instances_on_one_account_must_fit_its_rate_limit():
    def live(symbol, interval, account="main"):
        return parse(symbol=symbol, exchange="backpack", backpack={"account": account, "poll_interval_s": interval})
    symbols = [f"C{i}_USDC" for i in range(13)]
    fine = {s: live(s, 2.0) for s in symbols[:12]}  # 12 x 66.3 req/min = 796
    check_clashes(fine)
    busy = {s: live(s, 0.2) for s in symbols[:3]}  # 3 x (600 + 2 balance + 4 reconcile + 0.3) = 1819 > 1500
    with pytest.raises(ConfigError, match="account 'main' would poll ~1819 requests/min"):
        check_clashes(busy)
    split = {s: live(s, 0.2, account=f"sub{i}") for i, s in enumerate(symbols[:3])}
    check_clashes(split)  # one subaccount each: each has its own budget
