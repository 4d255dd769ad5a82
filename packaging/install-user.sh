#!/bin/sh
# Install gridbot for the current user, no root needed: a venv in ~/.local/share/gridbot/venv,
# ~/.local/bin/gridbot, and the user units in ~/.config/systemd/user (made from systemd/ by
# packaging/user_units.py). Then use `gridbot --user …`.
# For bots that run while you are logged out: `sudo loginctl enable-linger $USER` (once).
# Usage: ./packaging/install-user.sh [--wheels DIR]
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${GRIDBOT_PYTHON:-/usr/bin/python3}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}/gridbot
UNITS=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
CONF=${XDG_CONFIG_HOME:-$HOME/.config}/gridbot
WHEELS=""
[ "${1:-}" = "--wheels" ] && WHEELS=$2

[ -x "$DATA/venv/bin/python" ] || "$PYTHON" -m venv "$DATA/venv"
if [ -n "$WHEELS" ]; then
    "$DATA/venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$WHEELS" --upgrade gridbot
else
    "$DATA/venv/bin/pip" install -q --disable-pip-version-check --upgrade "$SRC"
fi
mkdir -p "$HOME/.local/bin" "$UNITS" "$CONF"
ln -sfn "$DATA/venv/bin/gridbot" "$HOME/.local/bin/gridbot"
# the user units, made from the system units (what a user manager cannot do left out, OnFailure= kept)
"$PYTHON" "$SRC/packaging/user_units.py" "$SRC/systemd" "$UNITS" --prefix "$DATA/venv"
systemctl --user daemon-reload 2>/dev/null || echo "install-user.sh: no user manager running now; run 'systemctl --user daemon-reload' later" >&2
echo "gridbot installed for $(id -un): configs in $CONF/NAME.json, then: gridbot --user start NAME"
