"""Fleet operations: what each CLI command does, between the config directory and systemd.

The CLI parses and prints; this module decides. Every check on user input (names, configs,
clashes) happens here *before* the first D-Bus call, so a bad request changes nothing.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from . import config as cfgmod
from ._units import TEMPLATE, check_name, unit_name
from .errors import ConfigError, GridbotError, InstanceNotFound, JobFailed, UsageError
from .systemd import Manager, UnitRow, enabled_instances, unit_dirs

if TYPE_CHECKING:
    from .models import GridConfig

LIVE_DROPIN = "50-live.conf"


@dataclass
class Context:
    """Which manager and directories a command works against (system, or --user)."""

    user: bool = False

    @property
    def config_dir(self) -> Path:
        return cfgmod.config_dir(self.user)

    @property
    def state_root(self) -> Path:
        if self.user:
            base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
            return Path(base) / "gridbot"
        return Path("/var/lib/gridbot")

    @property
    def unit_dir(self) -> Path:
        return unit_dirs(self.user)[0]

    def manager(self) -> Manager:
        return Manager(user=self.user)


# -- names and configs --------------------------------------------------------------------------
def resolve(ctx: Context, names: Iterable[str], paths: Iterable[Path] = ()) -> list[str]:
    """NAME arguments plus ``-c PATH`` options (stem = name), checked, de-duplicated, in order."""
    stems = []
    for p in paths:
        if not str(p).endswith(".json"):
            raise UsageError(f"-c {p}: a config path must end in .json (its stem is the instance name)")
        stems.append(Path(p).stem)
    out: list[str] = []
    for n in [*names, *stems]:
        check_name(n)
        if n not in out:
            out.append(n)
    return out


def validate(ctx: Context, names: list[str]) -> dict[str, "GridConfig"]:
    """Load and validate each config (ConfigError names the file and field)."""
    return {n: cfgmod.load(n, ctx.config_dir) for n in names}


def try_load(sources: Iterable[tuple[str, Path]]) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Load (name, path) pairs without stopping at the first bad one: (valid, name -> error)."""
    good, bad = {}, {}
    for name, path in sources:
        try:
            good[name] = cfgmod.load_file(path)
        except ConfigError as exc:
            bad[name] = str(exc)
    return good, bad


def load_all(ctx: Context, skip: Iterable[str] = ()) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Every config in the directory but ``skip``: (valid ones, name -> error for invalid ones)."""
    skipped = set(skip)
    return try_load((n, cfgmod.config_path(n, ctx.config_dir))
                    for n in cfgmod.list_names(ctx.config_dir) if n not in skipped)


# Backpack allows ~2000 requests/min per subaccount, shared by every instance on it. Each live
# bot polls about twice per poll_interval_s (fills, price); keep a quarter free for orders.
ACCOUNT_REQUESTS_PER_MIN = 2000
POLL_SHARE = 0.75
REQUESTS_PER_POLL = 2
# besides polling, each live bot reads: 2 requests per reconcile (fills, open orders), balances every
# 30 s, markets every 5 min, the clock every 10 min
REQUESTS_PER_RECONCILE = 2
BACKGROUND_PER_MIN = 2 + 0.2 + 0.1


def requests_per_min(cfg: "GridConfig") -> float:
    """What one idle live instance asks of its account per minute (orders come on top)."""
    return (REQUESTS_PER_POLL * 60 / cfg.backpack.poll_interval_s
            + REQUESTS_PER_RECONCILE * 60 / cfg.reconcile_interval_s + BACKGROUND_PER_MIN)


def check_clashes(configs: dict[str, "GridConfig"]) -> None:
    """Two instances may not share a status port, nor trade one symbol on one live account, and
    the live instances of one account must poll within that account's shared rate limit."""
    ports: dict[int, str] = {}
    books: dict[tuple[str, str, str], str] = {}
    polling: dict[tuple[str, str], float] = {}
    problems = []
    for name, cfg in sorted(configs.items()):
        if cfg.web_port is not None:
            if cfg.web_port in ports:
                problems.append(f"{ports[cfg.web_port]} and {name} both use web_port {cfg.web_port}")
            ports.setdefault(cfg.web_port, name)
        if cfg.exchange != "paper":  # each paper instance has its own simulated account
            key = (cfg.exchange, cfg.backpack.account, cfg.symbol)
            if key in books:
                problems.append(f"{books[key]} and {name} both trade {cfg.symbol} on {cfg.exchange} account '{key[1]}'")
            books.setdefault(key, name)
            account = (cfg.exchange, cfg.backpack.account)
            polling[account] = polling.get(account, 0.0) + requests_per_min(cfg)
    budget = ACCOUNT_REQUESTS_PER_MIN * POLL_SHARE
    for (exchange, account), per_min in sorted(polling.items()):
        if per_min > budget:
            problems.append(f"the {exchange} instances on account '{account}' would poll ~{per_min:.0f} requests/min, "
                            f"over {budget:.0f} of the {ACCOUNT_REQUESTS_PER_MIN}/min the account shares: "
                            f"raise backpack.poll_interval_s or reconcile_interval_s")
    if problems:
        raise ConfigError("clash: " + "; ".join(problems))


def preflight(ctx: Context, names: list[str]) -> dict[str, "GridConfig"]:
    """Before start/restart/enable: valid configs, no clash with any other configured instance,
    and live instances have credentials. Raises before anything is sent to systemd."""
    configs = validate(ctx, names)
    others, _bad = load_all(ctx, skip=configs)
    check_clashes({**others, **configs})
    check_credentials(ctx, configs)
    return configs


def install_configs(ctx: Context, paths: list[Path], force: bool = False) -> list[str]:
    """``start -c path/NAME.json``: validate every file, then copy them into the config directory.

    All checks (name, content, an existing different file without ``force``) pass before the first
    copy, so a bad file among several installs none; each copy is atomic.
    """
    names: list[str] = []
    plan = []
    for path in paths:
        name = resolve(ctx, [], [path])[0]
        if name in names:
            raise UsageError(f"-c {path}: two config files for instance '{name}'")
        names.append(name)
        cfgmod.load_file(path)
        target = cfgmod.config_path(name, ctx.config_dir)
        if target.exists() and path.resolve() == target.resolve():
            continue
        if target.exists() and not filecmp.cmp(path, target, shallow=False) and not force:
            raise UsageError(f"{target} exists and differs from {path}; use --force to replace it")
        plan.append((target, path.read_bytes()))
    for target, data in plan:
        _replace_file(target, data)
    return names


def _replace_file(target: Path, data: bytes) -> None:
    """Atomically put a world-readable file (configs and drop-ins hold no secrets)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except PermissionError:
        raise UsageError(f"cannot write {target}: permission denied (use sudo)") from None


def has_live_dropin(ctx: Context, name: str) -> bool:
    return _dropin_path(ctx, name).exists()


def _dropin_path(ctx: Context, name: str) -> Path:
    return ctx.unit_dir / f"{unit_name(name)}.d" / LIVE_DROPIN


def set_credentials(ctx: Context, name: str, api_key: str, api_secret: str) -> Path:
    """Store the keys root-only (encrypted where the host can), then give the instance a drop-in
    that loads them and lifts the template's loopback-only network rule. Nothing else changes."""
    from . import credentials

    if ctx.user:
        raise UsageError("credentials are system-wide only: use sudo without --user")
    check_name(name)
    stored = credentials.store_keys(name, api_key, api_secret)
    directive = credentials.credential_directive(name)
    dropin = _dropin_path(ctx, name)
    text = (f"# written by `gridbot credentials set {name}`: a live instance may reach its exchange\n"
            f"# (the template allows loopback only) and gets its API keys as a systemd credential.\n"
            f"[Service]\nIPAddressDeny=\n{directive}\n")
    _replace_file(dropin, text.encode())
    with ctx.manager() as m:
        m.reload()
    return stored


def remove_credentials(ctx: Context, name: str) -> bool:
    from . import credentials

    check_name(name)
    removed = credentials.remove_keys(name)
    dropin = _dropin_path(ctx, name)
    if dropin.exists():
        try:
            dropin.unlink()
        except PermissionError:
            raise UsageError(f"cannot remove {dropin}: permission denied (use sudo)") from None
        removed = True
        with ctx.manager() as m:
            m.reload()
    return removed


def check_credentials(ctx: Context, configs: dict[str, "GridConfig"]) -> None:
    for name, cfg in configs.items():
        if cfg.exchange != "paper" and not has_live_dropin(ctx, name):
            raise ConfigError(
                f"{name} trades on {cfg.exchange} but has no credentials: run `sudo gridbot credentials set {name}`"
            )


# -- lifecycle ----------------------------------------------------------------------------------
def known(ctx: Context, m: Manager, names: list[str]) -> None:
    """Raise InstanceNotFound unless each name has a config or a unit systemd knows of."""
    configured = set(cfgmod.list_names(ctx.config_dir))
    unknown = [n for n in names if n not in configured]
    if not unknown:
        return
    rows = {r.name: r for r in m.rows(unknown, set())}
    for n in unknown:
        r = rows.get(n)
        if r is None or r.load_state != "loaded" or (r.active_state == "inactive" and not r.since_us):
            raise InstanceNotFound(f"no such instance '{n}': no {ctx.config_dir / (n + '.json')} and no unit")


def ensure_template(m: Manager) -> None:
    if not m.template_loaded():
        raise GridbotError(f"{TEMPLATE} is not installed: run `sudo ./packaging/install.sh` first")


@dataclass(frozen=True)
class JobOutcome:
    name: str
    result: str
    row: Optional[UnitRow] = None

    @property
    def ok(self) -> bool:
        return self.result == "done"


def run_jobs(ctx: Context, method: str, names: list[str], timeout: float) -> list[JobOutcome]:
    with ctx.manager() as m:
        ensure_template(m)
        if method != "StartUnit":
            known(ctx, m, names)
        by_unit = m.run_jobs(method, [unit_name(n) for n in names], timeout)  # keyed by unit, in completion order
        results = {n: by_unit[unit_name(n)] for n in names}
        failed = {r.name: r for r in m.rows([n for n in names if results[n] != "done"], set())}
        return [JobOutcome(n, results[n], failed.get(n)) for n in names]


def instances_in_state(ctx: Context, *states: str) -> list[str]:
    with ctx.manager() as m:
        return [r.name for r in m.rows(m.loaded_instances(), set()) if r.active_state in states]


def stop_all(ctx: Context, timeout: float) -> list[str]:
    """One job on gridbot.target; PartOf= propagates the stop to every instance."""
    with ctx.manager() as m:
        before = [r.name for r in m.rows(m.loaded_instances(), set()) if r.active_state != "inactive"]
        result = m.stop_target(timeout)
        if result != "done":
            raise JobFailed(f"stopping gridbot.target: job {result}")
        still = [r.name for r in m.rows(before, set()) if r.active_state in ("active", "activating", "deactivating")]
        if still:
            raise JobFailed(f"still running after stop-all: {', '.join(still)}")
        return before


# -- reading ------------------------------------------------------------------------------------
def all_names(ctx: Context, m: Manager, enabled: set[str]) -> list[str]:
    """Configs, loaded units and enabled instances: systemd alone cannot list them all."""
    return sorted(set(cfgmod.list_names(ctx.config_dir)) | set(m.loaded_instances()) | enabled)


def rows(ctx: Context) -> list[UnitRow]:
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        return m.rows(all_names(ctx, m, enabled), enabled)


def status(ctx: Context, name: str) -> UnitRow:
    check_name(name)
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        known(ctx, m, [name])
        return m.status(name, enabled)


def enable(ctx: Context, names: list[str], on: bool) -> None:
    with ctx.manager() as m:
        ensure_template(m)
        units = [unit_name(n) for n in names]
        m.enable(units) if on else m.disable(units)


def cleanup(ctx: Context, names: list[str]) -> None:
    with ctx.manager() as m:
        for n in names:
            m.reset_failed(unit_name(n))


# -- logs ---------------------------------------------------------------------------------------
def journal_command(ctx: Context, names: list[str], *, follow: bool = False, lines: Optional[int] = None,
                    since: Optional[str] = None, priority: Optional[str] = None, grep: Optional[str] = None,
                    output: str = "short-iso") -> list[str]:
    """journalctl over the given instances (or all): exact ``-u`` semantics, no native deps."""
    exe = shutil.which("journalctl")
    if not exe:
        raise GridbotError("journalctl not found: gridbot logs needs systemd's journal")
    cmd = [exe, "--no-pager", "-o", output]
    if ctx.user:
        cmd.append("--user")
    units = [unit_name(n) for n in names] or ["gridbot@*.service"]
    for u in units:
        cmd += ["-u", u]
    if follow:
        cmd.append("-f")
    if lines is not None:
        cmd += ["-n", str(lines)]
    if since:
        cmd += ["--since", since]
    if priority:
        cmd += ["-p", priority]
    if grep:
        cmd += ["--grep", grep]
    return cmd


def recent_log(ctx: Context, name: str, lines: int = 5) -> list[str]:
    try:
        cmd = journal_command(ctx, [name], lines=lines, output="short-iso")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (GridbotError, OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("-- ")]
