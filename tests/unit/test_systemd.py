"""gridbot/systemd.py without a bus: permission messages name the missing right."""
from __future__ import annotations



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
