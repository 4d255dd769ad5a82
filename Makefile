# The newcomer's commands. Each sets up what it needs first (apt packages, venv, wheels).
.PHONY: setup demo demo-shell demo-stop test test-fast bench clean

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/python scripts/demo.py up

demo-shell:
	.venv/bin/python scripts/demo.py shell

demo-stop:
	.venv/bin/python scripts/demo.py down

# the whole suite: unit tests and the real-systemd container tests
test: setup
	.venv/bin/python -m pytest -q tests

# unit and bot tests (tests/unit, tests/bot): all but the real-systemd ones, for a quick local loop
# (CI always runs `make test`)
test-fast: setup
	.venv/bin/python -m pytest -q -m "not e2e" tests

bench: setup
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .cache build *.egg-info
