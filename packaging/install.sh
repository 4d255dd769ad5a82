#!/bin/sh
# Install gridbot on a systemd host: its own venv under /opt/gridbot, /usr/local/bin/gridbot,
# the unit files, the gridbot user and gridbot-ops group, /etc/gridbot and the polkit rule.
# Safe to run twice. Usage: sudo ./packaging/install.sh [--wheels DIR]
#   --wheels DIR   install offline from pre-built wheels (gridbot and its dependencies)
set -eu

PREFIX=/opt/gridbot
PYTHON=${GRIDBOT_PYTHON:-/usr/bin/python3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS=$2; shift 2 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || { echo "install.sh: must run as root (sudo ./packaging/install.sh)" >&2; exit 4; }
[ -x "$PYTHON" ] || { echo "install.sh: $PYTHON not found; set GRIDBOT_PYTHON" >&2; exit 1; }

# 1. the package, in a venv of its own made from the system interpreter (a venv under /root
#    or /home would be hidden from the sandboxed unit by ProtectHome=yes)
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
if [ -n "$WHEELS" ]; then
    "$PREFIX/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links "$WHEELS" --upgrade gridbot
else
    "$PREFIX/bin/pip" install --quiet --disable-pip-version-check --upgrade "$SRC"
fi
mkdir -p /usr/local/bin
ln -sfn "$PREFIX/bin/gridbot" /usr/local/bin/gridbot
# the config JSON Schema, where the example configs' "$schema" points (editors read it from disk)
mkdir -p /usr/local/share/gridbot
"$PREFIX/bin/gridbot" schema > /usr/local/share/gridbot/config.schema.json.tmp
mv -f /usr/local/share/gridbot/config.schema.json.tmp /usr/local/share/gridbot/config.schema.json
chmod 0644 /usr/local/share/gridbot/config.schema.json

# 2. user, group and directories
install -D -m 0644 "$SRC/packaging/sysusers.d-gridbot.conf" /etc/sysusers.d/gridbot.conf
install -D -m 0644 "$SRC/packaging/tmpfiles.d-gridbot.conf" /etc/tmpfiles.d/gridbot.conf
systemd-sysusers /etc/sysusers.d/gridbot.conf
systemd-tmpfiles --create /etc/tmpfiles.d/gridbot.conf

# 3. units and the operators' polkit rule
for unit in gridbot@.service gridbot.target gridbot-alert@.service gridbot-web.service; do
    install -D -m 0644 "$SRC/systemd/$unit" "/etc/systemd/system/$unit"
done
install -D -m 0644 "$SRC/packaging/50-gridbot.rules" /etc/polkit-1/rules.d/50-gridbot.rules

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "gridbot installed: $("$PREFIX/bin/gridbot" --version). Put configs in /etc/gridbot/NAME.json, then: gridbot start NAME"
