#!/bin/sh
# Developer/CI setup, idempotent: system packages (a real systemd for the container tests,
# headers to build pystemd; tmux and chromium for the `top` and dashboard tests), the venv with
# gridbot + test tools, and the offline wheel set
# that the throw-away container installs from.
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
APT="systemd systemd-container libsystemd-dev pkg-config gcc python3-venv python3-dev dbus polkitd util-linux procps iproute2 tmux chromium"

missing=""
for p in $APT; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "setup: need root to apt-get install:$missing" >&2; exit 1; }
    echo "setup: apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/pip --disable-pip-version-check -q"
stamp=.venv/.deps-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    mkdir -p .cache/wheels
    # one wheel set for the venv here and for the container (pystemd builds from source: once)
    $PIP wheel -w .cache/wheels setuptools wheel pip pystemd==0.15.3 typer==0.28.0 pydantic==2.14.4 \
        httpx==0.28.1 cryptography==50.0.2 textual==8.2.8 pytest==9.2.0 hypothesis==6.170.17
    $PIP install --upgrade --no-index --find-links .cache/wheels pip setuptools wheel
    # setuptools chatters on stderr while building the editable install: show it only on failure
    $PIP install --no-index --find-links .cache/wheels --no-build-isolation -e '.[test]' >.cache/setup.log 2>&1 \
        || { cat .cache/setup.log >&2; exit 1; }
    touch "$stamp"
fi
# the shared test support (tests/gridbot_testsupport) for scripts/ and bench/ too: a .pth file naming tests/ (no path edits in the scripts)
# (pytest finds it through pyproject's pythonpath)
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(pwd)/tests" > "$site/gridbot_testsupport.pth"
echo "setup: ok ($(.venv/bin/gridbot --version))"
