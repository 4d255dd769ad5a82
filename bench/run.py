"""`make bench`: gridbot's figures on this machine, printed as ratios measured in one run.

Boots a throw-away real systemd (tests/gridbot_testsupport/sdbox.py), installs gridbot with packaging/install.sh,
creates paper configs and measures; prints a table per section and writes bench/results.md.
Asserts nothing. Sections (default: all; pick with --only, e.g. ``--only list,cold``):

  cold      CLI cold start (`gridbot --help`, `gridbot list`) vs `python -c pass`
  list      `gridbot list` with 1, 10, 100 running instances vs systemctl list-units + show; then, at the
            largest fleet, the dashboard's fleet JSON (gridbot-web.service): request time and build time
  start     `gridbot start` of 50 instances vs `systemctl start gridbot@{1..50}`
  sandbox   N simultaneous starts: shipped template (paper), + live drop-in, plain copy; scores
  instance  steady RSS and idle CPU per paper instance, time from start to READY=1; idle CPU with
            figures published against the same bots with publishing off (its cost)
  strategy  strategy core updates/s on a 50-level grid (bench/bench_strategy.py, bench_bot.py)

Timings of commands are taken *inside* the container by one small Python timer per batch, so
the nsenter hop is not part of any figure. Command timings are the best of --reps runs (other
work on the machine only ever adds time); fleet starts are medians of --start-reps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from gridbot_testsupport import sdbox  # noqa: E402

SECTIONS = ("cold", "list", "start", "sandbox", "instance", "strategy")
GB = "/usr/local/bin/gridbot"
PY = "/opt/gridbot/bin/python"
# a throw-away ED25519 pair (RFC 8032 test 1): `gridbot credentials set` checks key against secret
TEST_KEYS = {"api_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
             "api_secret": "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="}
SHOW_PROPS = ["Id", "LoadState", "ActiveState", "SubState", "MainPID", "NRestarts", "Result", "ExecMainStatus",
              "ExecMainStartTimestamp", "CPUUsageNSec", "MemoryCurrent", "TasksCurrent", "StatusText"]

# run inside the box: time each argv `reps` times, print {label: [seconds, ...]}
TIMER = r'''
import json, subprocess, sys, time
spec = json.loads(sys.argv[1]); reps = int(sys.argv[2]); out = {}
for label, cmd in spec.items():
    subprocess.run(cmd, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ts.append(time.perf_counter() - t)
    out[label] = ts
print(json.dumps(out))
'''

# run inside the box: GET a URL `reps` times, print [seconds, ...] and the body size
FETCH = r'''
import json, sys, time, urllib.request
url, reps = sys.argv[1], int(sys.argv[2]); ts = []
for _ in range(reps):
    t = time.perf_counter(); body = urllib.request.urlopen(url, timeout=10).read(); ts.append(time.perf_counter() - t)
print(json.dumps({"times": ts, "bytes": len(body), "instances": len(json.loads(body)["instances"])}))
'''
WEB_PORT = 18787


def paper(i: int, interval: float = 1.0) -> str:
    low = 100 + i
    return json.dumps({"symbol": "SOL_USDC", "lower_price": low, "upper_price": low + 100, "levels": 10,
                       "qty_per_level": 0.1, "paper": {"price": {"start_price": low + 50, "interval_s": interval}}})


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.box: sdbox.Box | None = None
        self.head: list[str] = []
        self.md: list[str] = []
        self.summary: list[tuple[str, str]] = []
        self.findings: list[str] = []

    # -- output -----------------------------------------------------------------------------
    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)
        self.md += ["", f"## {title}", ""]

    def table(self, head: list[str], rows: list[list[str]], note: str = "") -> None:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for r in [head] + rows:
            print("  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths)), flush=True)
        self.md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        self.md += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
        if note:
            print("  " + note.replace("\n", "\n  "))
            self.md += ["", note]

    def key(self, what: str, figure: str) -> None:
        self.summary.append((what, figure))

    # -- box helpers ------------------------------------------------------------------------
    def sh(self, script: str, timeout: float = 600, check: bool = True) -> str:
        assert self.box is not None
        return self.box.run(["bash", "-c", script], timeout=timeout, check=check).stdout

    def timeit(self, spec: dict[str, object], reps: int) -> dict[str, float]:
        """Best-of-reps seconds per label, timed inside the box (robust to other load on the machine)."""
        assert self.box is not None
        out = self.box.run(["/usr/bin/python3", "-c", TIMER, json.dumps(spec), str(reps)], timeout=900, check=True)
        return {k: min(v) for k, v in json.loads(out.stdout).items()}

    def configs(self, prefix: str, n: int, interval: float = 1.0) -> list[str]:
        names = [f"{prefix}{i:03d}" for i in range(1, n + 1)]
        script = "mkdir -p /etc/gridbot\n" + "".join(
            f"cat > /etc/gridbot/{name}.json <<'EOF'\n{paper(i, interval)}\nEOF\n" for i, name in enumerate(names))
        self.sh(script)
        return names

    def drop_configs(self, names: list[str]) -> None:
        self.sh("rm -rf " + " ".join(f"/etc/gridbot/{n}.json /var/lib/gridbot/{n}" for n in names))

    def stop_all(self) -> None:
        self.sh("systemctl stop 'gridbot@*.service' 'gridbotplain@*.service' 2>/dev/null; "
                "systemctl reset-failed 'gridbot*' 2>/dev/null; true", timeout=300)

    def timed_sh(self, script: str, timeout: float = 600) -> float:
        """Wall time of one shell script inside the box, measured inside."""
        out = self.sh(f"s=$(date +%s%N); {script} >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 ))",
                      timeout=timeout)
        return int(out.strip().splitlines()[-1]) / 1e6

    def score(self, unit: str) -> float:
        out = self.sh(f"systemd-analyze security --no-pager {unit}")
        return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))

    # -- sections ---------------------------------------------------------------------------
    def run(self) -> None:
        only = [s for s in self.args.only.split(",") if s] if self.args.only else list(SECTIONS)
        bad = [s for s in only if s not in SECTIONS]
        if bad:
            sys.exit(f"bench: unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
        self.machine()
        need_box = [s for s in only if s != "strategy"]
        if need_box:
            t = time.monotonic()
            # /var/lib/systemd on a real disk, as on a host: systemd-creds will not keep its host
            # key (live instances' encrypted credentials) on the container's tmpfs
            self.varlib = tempfile.TemporaryDirectory(prefix="gbbench-varlib-")
            self.box = sdbox.Box(name=f"gbbench{os.getpid()}", binds=[(self.varlib.name, "/var/lib/systemd")]).boot()
            boot = time.monotonic() - t
            try:
                t = time.monotonic()
                self.box.install(sdbox.build_wheels())
                print(f"box booted in {boot:.1f} s, gridbot installed in {time.monotonic() - t:.1f} s; "
                      f"{self.sh('systemctl --version').splitlines()[0]}", flush=True)
                self.head += [f"- systemd in the container: {self.sh('systemctl --version').splitlines()[0]}"]
                for s in need_box:
                    getattr(self, f"bench_{s}")()
                    self.stop_all()
            finally:
                self.box.poweroff()
                self.varlib.cleanup()
        if "strategy" in only:
            self.bench_strategy()
        self.finish()

    def machine(self) -> None:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor() or "?")
        info = [("date", time.strftime("%Y-%m-%d %H:%M:%S %Z")), ("nproc", str(os.cpu_count())), ("cpu", cpu),
                ("kernel", platform.release()), ("python", platform.python_version()),
                ("load average at start (1/5/15 min)", " ".join(Path("/proc/loadavg").read_text().split()[:3]))]
        print("gridbot benchmarks: " + "; ".join(f"{k} {v}" for k, v in info), flush=True)
        self.head += ["# gridbot benchmark results", "", "Written by `make bench` (bench/run.py); figures from one run on "
                      "one machine, in a throw-away systemd-nspawn container (tests/gridbot_testsupport/sdbox.py).", ""]
        self.head += [f"- {k}: {v}" for k, v in info]

    def bench_cold(self) -> None:
        self.section(f"CLI cold start (best of {self.args.reps}, inside the container)")
        names = self.configs("cold", 3)
        self.sh(f"{GB} start {' '.join(names)}")
        t = self.timeit({"python -c pass": [PY, "-c", "pass"],
                         "python -I -S -c pass": [PY, "-I", "-S", "-c", "pass"],
                         "gridbot --version": [GB, "--version"],
                         "gridbot --help": [GB, "--help"],
                         "gridbot list (3 running)": [GB, "list"],
                         "gridbot status NAME": [GB, "status", names[0]]}, self.args.reps)
        base = t["python -c pass"]
        mods = {}
        for label, argv in (("--help", "--help"), ("list", "list")):
            out = self.sh(f"{PY} -X importtime {GB} {argv} 2>&1 >/dev/null | grep -c 'import time:' || true")
            mods[label] = out.strip()
        self.table(["command", "ms", "x python -c pass"],
                   [[k, f"{v * 1e3:.1f}", f"{v / base:.1f}"] for k, v in t.items()],
                   note=f"modules imported: `gridbot --help` {mods['--help']}, `gridbot list` {mods['list']} "
                        "(python -X importtime)")
        self.findings.append(
            f"Cold start: `gridbot --help` imports {mods['--help']} modules ({t['gridbot --help'] * 1e3:.0f} ms), "
            f"`gridbot list` {mods['list']} ({t['gridbot list (3 running)'] * 1e3:.0f} ms), against "
            f"{base * 1e3:.0f} ms for `python -c pass`.")
        self.key("CLI cold start: gridbot list / python -c pass",
                 f"{t['gridbot list (3 running)'] * 1e3:.0f} ms / {base * 1e3:.0f} ms = "
                 f"{t['gridbot list (3 running)'] / base:.1f}x")
        self.key("CLI cold start: gridbot --help", f"{t['gridbot --help'] * 1e3:.0f} ms = {t['gridbot --help'] / base:.1f}x")
        self.stop_all()
        self.drop_configs(names)

    def bench_list(self) -> None:
        self.section(f"`gridbot list` vs systemctl, by number of running instances (best of {self.args.reps})")
        rows, per = [], {}
        names: list[str] = []
        counts = [int(x) for x in self.args.list_counts.split(",")]
        for n in counts:
            new = self.configs("lst", n)[len(names):]
            names += new
            if new:
                self.sh(f"{GB} start --timeout 300 {' '.join(new)}", timeout=600)
            units = " ".join(f"gridbot@{x}.service" for x in names)
            props = ",".join(SHOW_PROPS)
            t = self.timeit({
                "gridbot list": [GB, "list"],
                "gridbot list --json": [GB, "list", "--json"],
                "systemctl list-units + show": f"systemctl list-units --no-pager 'gridbot@*' >/dev/null; "
                                               f"systemctl show -p {props} {units} >/dev/null",
                "systemctl list-units": "systemctl list-units --no-pager 'gridbot@*'",
            }, self.args.reps)
            per[n] = t
            rows.append([str(n), f"{t['gridbot list'] * 1e3:.1f}", f"{t['gridbot list --json'] * 1e3:.1f}",
                         f"{t['systemctl list-units'] * 1e3:.1f}", f"{t['systemctl list-units + show'] * 1e3:.1f}",
                         f"{t['gridbot list'] / t['systemctl list-units + show']:.2f}"])
        # what one `gridbot list` does to the system: processes spawned and bus connections opened
        trace = self.sh(f"strace -f -qq -e trace=execve,connect -o /run/list.trace {GB} list >/dev/null 2>&1; "
                        "echo execve=$(grep -c 'execve(' /run/list.trace) "
                        "connect=$(grep -c 'connect(.*/run/dbus/system_bus_socket' /run/list.trace)", check=False)
        lo, hi = counts[0], counts[-1]
        slope = {k: (per[hi][k] - per[lo][k]) / (hi - lo) * 1e3 for k in ("gridbot list", "systemctl list-units + show")}
        self.table(["running", "gridbot list ms", "list --json ms", "systemctl list-units ms",
                    "list-units + show ms", "gridbot/systemctl"], rows,
                   note=f"per extra instance: gridbot list {slope['gridbot list']:.2f} ms, systemctl list-units + show "
                        f"{slope['systemctl list-units + show']:.2f} ms. One `gridbot list`: {trace.strip()} "
                        "(strace: processes started, system-bus connections)")
        self.findings.append(
            f"`gridbot list` stays one process with one system-bus connection at any fleet size ({trace.strip()}); "
            f"its cost per extra running instance is {slope['gridbot list']:.2f} ms (ten property Gets per unit on that "
            f"connection) against {slope['systemctl list-units + show']:.2f} ms for `systemctl show`; the fixed "
            f"part ({per[lo]['gridbot list'] * 1e3:.0f} ms at {lo}) is interpreter start and imports.")
        self.key(f"gridbot list at {hi} instances vs systemctl list-units + show",
                 f"{per[hi]['gridbot list'] * 1e3:.0f} ms vs {per[hi]['systemctl list-units + show'] * 1e3:.0f} ms "
                 f"({per[hi]['gridbot list'] / per[hi]['systemctl list-units + show']:.2f}x); "
                 f"{slope['gridbot list']:.2f} ms per extra instance")
        self.bench_fleet_json(hi)
        self.stop_all()
        self.drop_configs(names)

    def bench_fleet_json(self, n: int) -> None:
        """The dashboard's /api/fleet with ``n`` running instances, from the installed gridbot-web.service."""
        self.section(f"dashboard fleet JSON with {n} running instances (gridbot-web.service)")
        self.sh(f"mkdir -p /etc/systemd/system/gridbot-web.service.d && printf '[Service]\\nEnvironment="
                f"GRIDBOT_WEB_PORT={WEB_PORT}\\n' > /etc/systemd/system/gridbot-web.service.d/bench.conf && "
                "systemctl daemon-reload && systemctl restart gridbot-web.service")
        url = f"http://127.0.0.1:{WEB_PORT}/api/fleet"
        deadline = time.monotonic() + 60
        while True:  # until the collector has seen the whole fleet
            out = self.box.run(["/usr/bin/python3", "-c", FETCH, url, "1"], timeout=60)
            if out.returncode == 0 and json.loads(out.stdout)["instances"] >= n or time.monotonic() > deadline:
                break
            time.sleep(1)
        d = json.loads(self.box.run(["/usr/bin/python3", "-c", FETCH, url, str(max(self.args.reps, 20))],
                                    timeout=300, check=True).stdout)
        # the collector's work per refresh (systemd rows + figure and history files), off the request path
        build = self.timeit({"build": [PY, "-c", "from gridbot import dashboard, fleet; "
                                                 "dashboard.collect(fleet.Context())"],
                             "python + imports": [PY, "-c", "from gridbot import dashboard, fleet"]}, self.args.reps)
        best, med = min(d["times"]) * 1e3, statistics.median(d["times"]) * 1e3
        rows = [[f"GET /api/fleet ({d['instances']} instances, {d['bytes'] / 1024:.0f} KiB)",
                 f"best {best:.1f} ms, median {med:.1f} ms"],
                ["one refresh by the collector thread (every 2 s, off the request path)",
                 f"{(build['build'] - build['python + imports']) * 1e3:.0f} ms"]]
        self.table(["figure", "value"], rows, note="budget: the fleet JSON for 100 instances in < 100 ms")
        self.key(f"dashboard fleet JSON, {d['instances']} instances", f"{med:.1f} ms median (budget < 100 ms)")
        self.sh("systemctl stop gridbot-web.service; rm -rf /etc/systemd/system/gridbot-web.service.d; "
                "systemctl daemon-reload")

    def bench_start(self) -> None:
        n = self.args.start_n
        self.section(f"starting {n} instances at once (paper configs, shipped template)")
        names = self.configs("stb", n)
        units = " ".join(f"gridbot@{x}.service" for x in names)
        rows = []
        res: dict[str, list[float]] = {"gridbot start": [], "systemctl start": []}
        for _ in range(self.args.start_reps):
            res["gridbot start"].append(self.timed_sh(f"{GB} start --timeout 300 {' '.join(names)}"))
            active = self.sh(f"systemctl is-active {units} | grep -c '^active$' || true").strip()
            self.stop_all()
            res["systemctl start"].append(self.timed_sh(f"systemctl start {units}"))
            self.stop_all()
        g, s = statistics.median(res["gridbot start"]), statistics.median(res["systemctl start"])
        rows = [["gridbot start " + f"x{n}", f"{g:.2f}", f"{g / s:.2f}"], [f"systemctl start (jobs queued together) x{n}",
                f"{s:.2f}", "1.00"]]
        self.table(["command", "s to all READY", "ratio"], rows,
                   note=f"median of {self.args.start_reps}; {active}/{n} active after gridbot start")
        self.key(f"gridbot start x{n} vs systemctl start x{n}", f"{g:.2f} s vs {s:.2f} s ({g / s:.2f}x)")
        self.drop_configs(names)

    def bench_sandbox(self) -> None:
        n = self.args.sandbox_n
        self.section(f"cost of the sandbox: {n} simultaneous starts (systemctl start, jobs queued together)")
        names = self.configs("sbx", n, interval=1.0)
        tmpl = self.sh("cat /etc/systemd/system/gridbot@.service")
        keep = ("Description", "ExecStart", "Type", "NotifyAccess", "DynamicUser", "User", "Group", "StateDirectory",
                "ConfigurationDirectory", "Environment", "Restart", "RestartSec", "RestartPreventExitStatus",
                "TimeoutStopSec", "WatchdogSec", "ExecReload")
        plain = "\n".join(ln for ln in tmpl.splitlines() if ln.startswith("[") or ln.split("=", 1)[0] in keep)
        self.box.put("/etc/systemd/system/gridbotplain@.service", plain + "\n")
        # the live drop-in exactly as `gridbot credentials set` writes it (encrypted key), once;
        # the same ciphertext serves every instance (its name inside is "backpack", not the instance)
        # (credentials are for live configs only: names[0] is live for that one command)
        conf = f"/etc/gridbot/{names[0]}.json"
        paper = self.sh(f"cat {conf}")
        self.box.put(conf, json.dumps({**json.loads(paper), "exchange": "backpack"}))
        self.box.gridbot("credentials", "set", names[0], input=json.dumps(TEST_KEYS), check=True)
        self.box.put(conf, paper)
        first = f"/etc/systemd/system/gridbot@{names[0]}.service.d/50-live.conf"
        dropin = self.sh(f"cat {first}")
        cred = re.search(r"^LoadCredential\S*=backpack:(\S+)$", dropin, re.M).group(1)
        self.sh(f"mv {first} /run/live.conf.tmpl; cp {cred} /run/live.cred.tmpl")

        def set_live(tpl: str, on: bool) -> None:
            script = ""
            for x in names:
                d = f"/etc/systemd/system/{tpl}@{x}.service.d"
                if on:
                    src = cred.replace(names[0], x)
                    script += (f"mkdir -p {d}; cp -p /run/live.cred.tmpl {src}; "
                               f"sed 's#{cred}#{src}#' /run/live.conf.tmpl > {d}/50-live.conf\n")
                else:
                    script += f"rm -rf {d}\n"
            self.sh(script + "systemctl daemon-reload")

        variants = [
            ("shipped template, paper instance", "gridbot", False),
            ("shipped template + live drop-in (`gridbot credentials set`)", "gridbot", True),
            ("plain copy (no sandbox), paper", "gridbotplain", False),
            ("plain copy + the same live drop-in", "gridbotplain", True),
        ]
        rows, figs = [], {}
        k = min(10, n // 2)
        for label, tpl, live in variants:
            set_live(tpl, live)
            units = [f"{tpl}@{x}.service" for x in names]
            sc = self.score(units[0])
            dt = self.timed_sh(f"systemctl start {' '.join(units)}", timeout=900)
            ok = self.sh(f"systemctl is-active {' '.join(units)} | grep -c '^active$' || true").strip()
            # the same last k starts again, with n-k running, then alone: does a start cost grow?
            self.sh(f"systemctl stop {' '.join(units[-k:])}")
            loaded = self.timed_sh(f"systemctl start {' '.join(units[-k:])}")
            self.sh(f"systemctl stop {' '.join(units[:-k])}")
            self.sh(f"systemctl stop {' '.join(units[-k:])}")
            alone = self.timed_sh(f"systemctl start {' '.join(units[-k:])}")
            self.sh(f"systemctl stop {' '.join(units[-k:])}; systemctl reset-failed 'gridbot*' 2>/dev/null; true")
            set_live(tpl, False)
            figs[label] = (sc, dt)
            rows.append([label, f"{sc:.1f}", f"{dt:.2f}", f"{alone:.2f}", f"{loaded:.2f}", f"{ok}/{n}"])
        self.sh("rm -f /etc/systemd/system/gridbotplain@.service /run/live.*.tmpl /etc/gridbot/credentials/sbx*; "
                "systemctl daemon-reload")
        (pl, pt), (ll, lt), (_, plt), (_, plct) = (figs[v[0]] for v in variants)
        ramp = {r[0]: (float(r[3]), float(r[4])) for r in rows}
        (pa, pb), (la, lb) = ramp[variants[0][0]], ramp[variants[1][0]]
        (qa, qb), (ca, cb) = ramp[variants[2][0]], ramp[variants[3][0]]
        self.table(["unit", "exposure", f"start x{n} s", f"start {k}, none running s",
                    f"start {k}, {n - k} running s", "active"], rows,
                   note=f"Paper instances (no credential): {k} starts cost {pa:.2f} s alone and {pb:.2f} s with "
                        f"{n - k} running (plain copy: {qa:.2f} / {qb:.2f} s), so the sandbox adds a roughly "
                        f"constant per-start cost. Live instances: {la:.2f} s alone, "
                        f"{lb:.2f} s with {n - k} live running (plain copy with the same credential: "
                        f"{ca:.2f} / {cb:.2f} s): each running live instance keeps a credential mount "
                        "(/run/credentials/UNIT) in the host's mount table, and every later start pays for the "
                        "table's size, more so with a mount namespace.")
        self.findings.append(
            f"Sandbox cost: the shipped template keeps the paper score at {pl} and starts {n} paper bots in "
            f"{pt:.1f} s against {plt:.1f} s for an unsandboxed copy ({pt / plt:.1f}x); the per-start cost stays "
            f"roughly flat as the fleet grows ({pa:.2f} s -> {pb:.2f} s for {k} starts with {n - k} running; plain "
            f"{qa:.2f} -> {qb:.2f} s). The design that gets there: no credential in the template at all; only live instances get "
            f"`LoadCredential*=` through their `50-live.conf` drop-in. Live ({ll}): {n} at once take {lt:.1f} s vs "
            f"{plct:.1f} s unsandboxed with the same credential ({lt / plct:.1f}x); their per-start cost grows with "
            f"the number of live instances running ({la:.2f} s -> {lb:.2f} s for {k} starts). No single sandbox "
            "directive causes it (each mount-namespace directive removed alone, or MountFlags=private, changed "
            "nothing in a probe); it is credential mounts in the host table times namespace setup.")
        self.key(f"{n} simultaneous starts: shipped template, paper (score {pl})",
                 f"{pt:.2f} s vs plain {plt:.2f} s ({pt / plt:.1f}x)")
        self.key(f"{n} simultaneous starts: shipped + live drop-in (score {ll})",
                 f"{lt:.2f} s vs plain + live drop-in {plct:.2f} s ({lt / plct:.1f}x)")
        self.drop_configs(names)

    def bench_instance(self) -> None:
        n = self.args.instance_n
        self.section(f"one paper instance: READY time, steady RSS, idle CPU (over {n} instances)")
        names = self.configs("ins", n, interval=1.0)
        ready = []
        for x in names[:5]:  # one at a time: fork to READY=1, from systemd's own timestamps
            self.sh(f"systemctl start gridbot@{x}.service")
            p = self.box.show(f"gridbot@{x}.service", "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic",
                              "InactiveExitTimestampMonotonic")
            ready.append((int(p["ActiveEnterTimestampMonotonic"]) - int(p["InactiveExitTimestampMonotonic"])) / 1e6)
            self.sh(f"systemctl stop gridbot@{x}.service")
        self.sh(f"{GB} start --timeout 300 {' '.join(names)}", timeout=600)
        time.sleep(self.args.settle)
        probe = r'''
import json, os, subprocess, sys, time
names = sys.argv[1:]
pids = [int(subprocess.run(["systemctl", "show", "-P", "MainPID", f"gridbot@{n}.service"], capture_output=True,
        text=True).stdout) for n in names]
hz = os.sysconf("SC_CLK_TCK")
def cpu(p):  # ns on CPU (schedstat), else clock ticks (utime + stime)
    try:
        return int(open(f"/proc/{p}/schedstat").read().split()[0]) / 1e9
    except OSError:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / hz
def rss(p):
    for ln in open(f"/proc/{p}/status"):
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) * 1024
c0 = [cpu(p) for p in pids]; t0 = time.monotonic(); time.sleep(float(os.environ["WINDOW"]))
c1 = [cpu(p) for p in pids]; dt = time.monotonic() - t0
print(json.dumps({"rss": [rss(p) for p in pids], "cpu": [(b - a) / dt for a, b in zip(c0, c1)]}))
'''
        def measure() -> dict:
            out = self.box.run(["/usr/bin/python3", "-c", probe, *names], env={"WINDOW": str(self.args.window)},
                               timeout=300, check=True)
            return json.loads(out.stdout)
        d = measure()
        stats = json.loads(self.sh(f"{GB} stats --json"))
        mem_cg = [x["memory_bytes"] for x in stats["instances"] if x["name"] in set(names)]
        rss_med = statistics.median(d["rss"]) / 2**20
        cpu_med = statistics.median(d["cpu"]) * 100
        cg = statistics.median([m for m in mem_cg if m is not None]) / 2**20 if any(m is not None for m in mem_cg) else None
        rows = [["start to READY=1 (fork to active, median of 5, one at a time)", f"{statistics.median(ready) * 1e3:.0f} ms"],
                ["steady RSS per instance (VmRSS, median)", f"{rss_med:.1f} MiB"],
                ["cgroup MemoryCurrent per instance (gridbot stats, median)", "n/a" if cg is None else f"{cg:.1f} MiB"],
                [f"idle CPU per instance (over {self.args.window:.0f} s, paper ticks every 1 s)", f"{cpu_med:.2f} % of one core"],
                [f"total for {n}: RSS / CPU", f"{sum(d['rss']) / 2**20:.0f} MiB / {sum(d['cpu']) * 100:.1f} % of one core"]]
        self.table(["figure", "value"], rows)
        self.key("paper instance: start to READY / RSS / idle CPU",
                 f"{statistics.median(ready) * 1e3:.0f} ms / {rss_med:.1f} MiB / {cpu_med:.2f} % of a core")
        # the cost of publishing figures: the same bots with the figures directory pointed nowhere
        # (the publisher gives up after one failed write and computes nothing more)
        self.sh("mkdir -p /etc/systemd/system/gridbot@.service.d && printf '[Service]\\nEnvironment="
                "GRIDBOT_FIGURES_DIR=/nonexistent/figures\\n' > /etc/systemd/system/gridbot@.service.d/90-bench.conf"
                " && systemctl daemon-reload")
        self.sh(f"systemctl restart {' '.join(f'gridbot@{x}.service' for x in names)}", timeout=600)
        time.sleep(self.args.settle)
        off = measure()
        self.sh("rm -f /etc/systemd/system/gridbot@.service.d/90-bench.conf && systemctl daemon-reload")
        cpu_off = statistics.median(off["cpu"]) * 100
        self.table(["idle CPU per instance (median)", "value"],
                   [["figures published (shipped)", f"{cpu_med:.3f} % of one core"],
                    ["figures off", f"{cpu_off:.3f} % of one core"],
                    ["cost of publishing", f"{cpu_med - cpu_off:+.3f} points (same bots, same window)"]],
                   note="a bot writes its figures at most every 2 s and only when they changed (paper price ticks "
                        "every 1 s here, so about every 2 s), plus one history point a minute")
        self.key("idle CPU of publishing figures", f"{cpu_med - cpu_off:+.3f} points of a core per bot "
                                                   f"({cpu_med:.3f} % vs {cpu_off:.3f} % off)")
        self.stop_all()
        self.drop_configs(names)

    def bench_strategy(self) -> None:
        self.section("strategy core and bot (bench/bench_strategy.py, bench/bench_bot.py, on the host)")
        lines = []
        for script in ("bench_strategy.py", "bench_bot.py"):
            path = ROOT / "bench" / script
            if not path.exists():
                lines.append(f"{script}: not present")
                continue
            r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
            lines += [f"$ python bench/{script}"] + r.stdout.rstrip().splitlines()
            if r.returncode:
                lines.append(f"(exit {r.returncode}: {r.stderr.strip().splitlines()[-1:] or ''})")
            m = re.search(r"ticks only:\s+([\d,]+) (updates[^(]*)", r.stdout)
            if m:
                self.key("strategy core, 50-level grid", f"{m.group(1)} price {m.group(2).strip()}")
        print(textwrap.indent("\n".join(lines), "  "), flush=True)
        self.md += ["```"] + lines + ["```"]

    def finish(self) -> None:
        print("\n== summary")
        for k, v in self.summary:
            print(f"  {k}: {v}")
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"  load average at the end: {load}")
        text = self.head + [f"- load average at the end: {load} (other work on the machine inflates fleet "
                            "timings; the ratios are measured side by side)", "", "## Summary", ""] + [f"- {k}: **{v}**" for k, v in self.summary]
        if self.findings:
            text += ["", "## Findings", ""] + [f"- {f}" for f in self.findings]
            print("\n== findings\n" + "\n".join(textwrap.fill(f, 110, initial_indent="  - ", subsequent_indent="    ")
                                                  for f in self.findings))
        text += self.md
        if not self.args.no_write:
            (ROOT / "bench" / "results.md").write_text("\n".join(text) + "\n")
            print(f"\nwrote {ROOT / 'bench' / 'results.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--reps", type=int, default=7, help="runs per timed command (best of)")
    ap.add_argument("--list-counts", default="1,10,100", help="running instances for the list section")
    ap.add_argument("--start-n", type=int, default=50)
    ap.add_argument("--start-reps", type=int, default=3)
    ap.add_argument("--sandbox-n", type=int, default=100, help="simultaneous starts per unit variant (as the probe: 100)")
    ap.add_argument("--instance-n", type=int, default=20, help="instances for the RSS/idle CPU figures")
    ap.add_argument("--window", type=float, default=10.0, help="seconds of idle CPU sampling")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to let instances settle before sampling")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results.md alone")
    Bench(ap.parse_args()).run()


if __name__ == "__main__":
    main()
