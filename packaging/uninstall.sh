#!/bin/sh
# Remove gridbot: stop every instance, remove units, venv, link, polkit rule, sysusers/tmpfiles
# entries. Configs (/etc/gridbot) and state (/var/lib/gridbot: the instances' states and the
# accounts' client-id epoch registries in .accounts) stay unless --purge.
# Usage: sudo ./packaging/uninstall.sh [--purge]
set -eu
PURGE=no
case "${1:-}" in
    --purge) PURGE=yes ;;
    "") ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: must run as root" >&2; exit 4; }

if [ -d /run/systemd/system ]; then
    systemctl stop gridbot.target 'gridbot@*.service' gridbot-web.service 2>/dev/null || true
    systemctl disable gridbot-web.service 2>/dev/null || true
    # disable instance by instance (never the bare template: that unlinks every instance anyway)
    for link in /etc/systemd/system/*.wants/gridbot@*.service /etc/systemd/system/*.wants/gridbot.target; do
        [ -L "$link" ] && rm -f "$link"
    done
fi
rm -f /etc/systemd/system/gridbot@.service /etc/systemd/system/gridbot.target \
      /etc/systemd/system/gridbot-alert@.service /etc/systemd/system/gridbot-web.service
rm -rf /etc/systemd/system/gridbot@*.service.d
rm -f /etc/polkit-1/rules.d/50-gridbot.rules /etc/sysusers.d/gridbot.conf /etc/tmpfiles.d/gridbot.conf
rm -f /usr/local/bin/gridbot
rm -rf /usr/local/share/gridbot
rm -rf /opt/gridbot /run/gridbot
if [ "$PURGE" = yes ]; then
    rm -rf /etc/gridbot /var/lib/gridbot /var/lib/private/gridbot
    userdel gridbot 2>/dev/null || true
    userdel gridbot-web 2>/dev/null || true
    groupdel gridbot-ops 2>/dev/null || true
fi
[ -d /run/systemd/system ] && systemctl daemon-reload && systemctl reset-failed 'gridbot@*' 2>/dev/null || true
echo "gridbot removed$( [ "$PURGE" = yes ] && echo ', configs and state purged' || echo '; configs in /etc/gridbot and state in /var/lib/gridbot kept (use --purge to remove)')"
