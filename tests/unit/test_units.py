"""gridbot/_units.py: instance names (the one rule, shared with the polkit rule) and unit names."""
from __future__ import annotations

from pathlib import Path

import pytest

from gridbot._units import check_name, instance_of, unit_name
from gridbot.errors import UsageError


@pytest.mark.parametrize("name", ["bp_sol_01", "a", "A-b_c", "x_y", "9lives", "_x", "a" * 23])
def test_good_names_round_trip(name):
    assert instance_of(unit_name(name)) == name


@pytest.mark.parametrize("name", ["", "a/b", "..", "a..b", ".x", "x.", "-x", "a b", "x@y", "x*", "x?", "[x]", "x\\y",
                                  "naïve", "x\ny", "a" * 24, "$(id)", "x:y", "%i", "x.y", "--help", "a.b.c"])
def test_bad_names_rejected(name):
    with pytest.raises(UsageError) as exc:
        check_name(name)
    assert "\n" not in str(exc.value)


def test_web_is_reserved_its_user_is_the_dashboards():
    """User=gridbot-%i: an instance `web` would run as the static gridbot-web user (the dashboard's)."""
    with pytest.raises(UsageError, match="reserved"):
        check_name("web")
    assert check_name("web1") == "web1"
    rules = (Path(__file__).resolve().parents[2] / "packaging" / "50-gridbot.rules").read_text()
    assert 'm[1] != "web"' in rules
