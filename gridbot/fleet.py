"""Fleet operations: what each CLI command does, between the config directory and systemd.

The CLI parses and prints; this module decides. Every check on user input (names, configs,
clashes) happens here *before* the first D-Bus call, so a bad request changes nothing.
"""
from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from . import account as acct
from . import config as cfgmod
# the account's shared rate limit and what one bot polls: one set of figures, enforced by the bot itself
from .account import ACCOUNT_REQUESTS_PER_MIN, poll_budget, requests_per_min
from ._units import TEMPLATE, check_name, instance_of, unit_name
from .errors import ConfigError, GridbotError, InstanceNotFound, JobFailed, NotRunning, PermissionDenied, UsageError
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


def require_configs(ctx: Context, names: list[str]) -> None:
    """InstanceNotFound (the same exit code on every verb) for a name without a config file."""
    for n in names:
        if not cfgmod.config_path(n, ctx.config_dir).exists():
            raise InstanceNotFound(f"no such instance '{n}': no {cfgmod.config_path(n, ctx.config_dir)}")


def validate(ctx: Context, names: list[str], *, feasible: bool = False) -> dict[str, "GridConfig"]:
    """Load and validate each config (ConfigError names the file and field); ``feasible``: and that
    the grid will trade (gridbot.feasibility, the checks the bot runs at start)."""
    require_configs(ctx, names)
    good, bad = try_load(((n, cfgmod.config_path(n, ctx.config_dir)) for n in names), feasible=feasible)
    if bad:  # every file's errors at once, not the first file's only
        raise ConfigError("; ".join(bad[n] for n in names if n in bad))
    return {n: good[n] for n in names}


def try_load(sources: Iterable[tuple[str, Path]], *, feasible: bool = False,
             ) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Load (name, path) pairs without stopping at the first bad one: (valid, name -> error)."""
    good, bad = {}, {}
    for name, path in sources:
        try:
            good[name] = cfgmod.load_file(path, feasible=feasible)
        except ConfigError as exc:
            bad[name] = str(exc)
    return good, bad


def require_files(paths: Iterable[Path]) -> None:
    """``-c PATH`` that is not there is a command-line mistake (exit 2, as Click's own path checks)."""
    for path in paths:
        if not Path(path).is_file():
            raise UsageError(f"-c {path}: no such config file")


def check_files(paths: list[Path]) -> None:
    """``start -c``: every file valid and feasible before any is installed (install_configs copies)."""
    require_files(paths)
    for path in paths:
        cfgmod.load_file(path, feasible=True)


def load_all(ctx: Context, skip: Iterable[str] = (), *, feasible: bool = False,
             ) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Every config in the directory but ``skip``: (valid ones, name -> error for invalid ones)."""
    skipped = set(skip)
    return try_load(((n, cfgmod.config_path(n, ctx.config_dir))
                     for n in cfgmod.list_names(ctx.config_dir) if n not in skipped), feasible=feasible)


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
            polling[account] = polling.get(account, 0.0) + requests_per_min(cfg.backpack.poll_interval_s, cfg.reconcile_interval_s)
    budget = poll_budget()
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
    configs = validate(ctx, names, feasible=True)
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
        raise PermissionDenied(f"cannot write {target}: permission denied (needs root: sudo)") from None


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
            raise PermissionDenied(f"cannot remove {dropin}: permission denied (needs root: sudo)") from None
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


def saved_grid(ctx: Context, name: str) -> tuple[Optional[dict], Optional[dict]]:
    """(grid fields, strategy snapshot) the instance's state was built with; (None, None) if it has
    none or it cannot be read (then no preview: the start itself is unaffected). Read-only."""
    import json
    import sqlite3

    db = ctx.state_root / name / "gridbot.sqlite"
    try:
        if not db.is_file():  # the state directory is 0700: an operator cannot look (PermissionError)
            return None, None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            rows = dict(con.execute("SELECT key, value FROM kv WHERE key IN ('grid', 'strategy')").fetchall())
        finally:
            con.close()
        return (json.loads(rows["grid"]) if "grid" in rows else None,
                json.loads(rows["strategy"]) if "strategy" in rows else None)
    except (sqlite3.Error, OSError, ValueError):
        return None, None


def unreadable_state(ctx: Context, name: str) -> bool:
    """The state directory exists but this user cannot read it (0700, owned by gridbot)."""
    d = ctx.state_root / name
    try:
        return d.is_dir() and not os.access(d, os.R_OK | os.X_OK)
    except OSError:
        return True


def change_plans(ctx: Context, configs: dict[str, "GridConfig"]) -> list:
    """preview.Plan for each instance whose next start re-grids (config grid fields changed)."""
    from . import preview

    plans = []
    for name, cfg in configs.items():
        grid, snap = saved_grid(ctx, name)
        try:
            p = preview.plan(name, cfg, grid, snap, cfg.paper.taker_fee if cfg.exchange == "paper" else Decimal("0.001"))
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue  # a snapshot from another version: no preview rather than a crash
        if p is not None:
            plans.append(p)
    return plans


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


def run_jobs(ctx: Context, method: str, names: list[str], timeout: float,
             on_done: Optional[Callable[[JobOutcome], None]] = None,
             on_wait: Optional[Callable[[list[str], float], None]] = None) -> list[JobOutcome]:
    """Queue one job per instance, all at once; ``on_done`` hears of each the moment it ends
    (``on_wait(pending names, seconds)`` about twice a second while some are left)."""
    with ctx.manager() as m:
        ensure_template(m)
        if method != "StartUnit":
            known(ctx, m, names)
        if method == "ReloadUnit":
            idle = [r.name for r in m.rows(names, set()) if r.active_state not in ("active", "reloading")]
            if idle:
                raise NotRunning(f"not running, nothing to reload: {', '.join(idle)} (start it instead)")
        outcomes: dict[str, JobOutcome] = {}

        def done(unit: str, result: str) -> None:
            name = instance_of(unit) or unit
            row = m.rows([name], set())[0] if result != "done" else None
            outcomes[name] = JobOutcome(name, result, row)
            if on_done is not None:
                on_done(outcomes[name])

        waiting = None
        if on_wait is not None:
            waiting = lambda units, s: on_wait([instance_of(u) or u for u in units], s)  # noqa: E731
        m.run_jobs(method, [unit_name(n) for n in names], timeout, done, waiting)
        return [outcomes[n] for n in names]


def configured(ctx: Context) -> list[str]:
    """Every instance with a config file (``start --all``)."""
    return cfgmod.list_names(ctx.config_dir)


def require_known(ctx: Context, names: list[str]) -> None:
    """InstanceNotFound unless each name has a config or a unit systemd knows of (logs, rm)."""
    if not names:
        return
    with ctx.manager() as m:
        known(ctx, m, names)


def instances_in_state(ctx: Context, *states: str) -> list[str]:
    with ctx.manager() as m:
        return [r.name for r in m.rows(m.loaded_instances(), set()) if r.active_state in states]


def stop_all(ctx: Context, timeout: float) -> list[str]:
    """One job on gridbot.target; PartOf= propagates the stop to every instance."""
    with ctx.manager() as m:
        before = [r.name for r in m.rows(m.loaded_instances(), set())
                  if r.active_state in ("active", "activating", "reloading", "deactivating")]
        result = m.stop_target(timeout)
        if result != "done":
            raise JobFailed(f"stopping gridbot.target: job {result}")
        still = [r.name for r in m.rows(before, set()) if r.active_state in ("active", "activating", "deactivating")]
        if still:
            raise JobFailed(f"still running after stop-all: {', '.join(still)}")
        return before


def check_can_remove(ctx: Context, names: list[str]) -> None:
    """``rm`` changes files under the config and unit directories: refuse up front, naming the right."""
    for d in (ctx.config_dir, ctx.unit_dir):
        if d.exists() and not os.access(d, os.W_OK):
            raise PermissionDenied(f"to rm {', '.join(names)} you need root (sudo): it removes files in {d}")


def remove(ctx: Context, names: list[str], *, purge: bool, timeout: float) -> dict[str, list[str]]:
    """``rm``: stop, disable, forget the failed state and delete the config; ``purge`` also the
    state directory, the credentials and the instance's drop-ins. Returns name -> what was removed.

    Everything that can refuse (names, permission, unknown instance) is checked before the first
    change; a stop that fails leaves every file in place.
    """
    check_can_remove(ctx, names)
    out: dict[str, list[str]] = {n: [] for n in names}
    with ctx.manager() as m:
        ensure_template(m)
        known(ctx, m, names)
        units = [unit_name(n) for n in names]
        results = m.run_jobs("StopUnit", units, timeout)
        bad = [f"{instance_of(u)} (job {r})" for u, r in results.items() if r != "done"]
        if bad:
            raise JobFailed(f"could not stop {', '.join(bad)}: nothing removed")
        m.disable(units)
        for n in names:
            cfg = cfgmod.config_path(n, ctx.config_dir)
            if _unlink(cfg):
                out[n].append(str(cfg))
            if purge:
                out[n] += _purge(ctx, n)
        m.reload()
        for u in units:
            with contextlib.suppress(GridbotError):  # not failed, or already unloaded: nothing to reset
                m.reset_failed(u)
    return out


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        raise PermissionDenied(f"cannot remove {path}: permission denied (needs root: sudo)") from None


def _purge(ctx: Context, name: str) -> list[str]:
    removed = []
    for state in (ctx.state_root / name, ctx.state_root.parent / "private" / ctx.state_root.name / name):
        if state.is_dir() and not state.is_symlink():
            shutil.rmtree(state)
            removed.append(str(state))
    if not ctx.user:
        from . import credentials

        paths = [p for p in credentials.key_paths(name) if p.exists()]
        if credentials.remove_keys(name):
            removed += [str(p) for p in paths]
    dropins = ctx.unit_dir / f"{unit_name(name)}.d"
    if dropins.is_dir():
        shutil.rmtree(dropins)
        removed.append(str(dropins))
    return removed


# -- reading ------------------------------------------------------------------------------------
def all_names(ctx: Context, m: Manager, enabled: set[str]) -> list[str]:
    """Configs, loaded units and enabled instances: systemd alone cannot list them all."""
    return sorted(set(cfgmod.list_names(ctx.config_dir)) | set(m.loaded_instances()) | enabled)


def rows(ctx: Context) -> list[UnitRow]:
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        return m.rows(all_names(ctx, m, enabled), enabled)


def figures_dir(ctx: Context) -> Path:
    from .figures import figures_dir as where

    return where(ctx.user)


def figures(ctx: Context, names: list[str]) -> dict[str, dict]:
    """The figures each named bot published (absent: never ran since boot, or not publishing)."""
    from .figures import read_all

    return read_all(figures_dir(ctx), names)


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


# -- reset --------------------------------------------------------------------------------------
RUNNING_STATES = ("active", "activating", "reloading", "deactivating")


@dataclass(frozen=True)
class ResetPlan:
    """What ``gridbot reset NAME`` will do; built with every check done and nothing changed."""

    name: str
    state_dir: Path
    state_entries: list[str]
    live: bool
    exchange: str = ""
    account: str = ""
    symbol: str = ""
    epochs: tuple[int, ...] = ()
    accounts_root: Optional[Path] = None
    failed: bool = False


def _unit_state(ctx: Context, name: str) -> str:
    with ctx.manager() as m:
        known(ctx, m, [name])
        rows = m.rows([name], set())
    return rows[0].active_state if rows else "inactive"


def _check_not_holding(root: Path, exchange: str, label: str, symbol: str, name: str) -> None:
    h = acct.holder(root, exchange, label, symbol)
    if h is not None and h.get("name") == name:  # running outside systemd (`gridbot run` by hand)
        raise UsageError(f"{name} is running (pid {h.get('pid', '?')}): stop it first; nothing was reset")


def reset_plan(ctx: Context, name: str) -> ResetPlan:
    """Check that ``name`` may be reset (root for the system, known, configured, not running)."""
    check_name(name)
    if not ctx.user and os.geteuid() != 0:
        raise PermissionDenied(f"gridbot reset deletes the state of {name}: run it with sudo")
    state = _unit_state(ctx, name)
    if state in RUNNING_STATES:
        raise UsageError(f"{name} is {state}: stop it first (`gridbot stop {name}`); nothing was reset")
    cfg = cfgmod.load(name, ctx.config_dir)
    state_dir = ctx.state_root / name
    try:
        entries = sorted(p.name for p in state_dir.iterdir()) if state_dir.is_dir() else []
    except PermissionError:
        raise PermissionDenied(f"cannot read {state_dir}: permission denied (use sudo)") from None
    if cfg.exchange == "paper":
        return ResetPlan(name, state_dir, entries, live=False, failed=state == "failed")
    exchange, label = acct.account_key(cfg)
    root = acct.accounts_root(ctx.state_root)
    _check_not_holding(root, exchange, label, cfg.symbol, name)
    epochs = tuple(acct.history(root, exchange, label, name)["epochs"])
    return ResetPlan(name, state_dir, entries, True, exchange, label, cfg.symbol, epochs, root, state == "failed")


def reset_apply(ctx: Context, plan: ResetPlan) -> list[str]:
    """Clear the state directory, retire the live instance's epochs (its next start cancels their
    open orders), clear a failed unit. Returns what was done, one line each."""
    name = plan.name
    if _unit_state(ctx, name) in RUNNING_STATES:  # started since the plan was made
        raise UsageError(f"{name} was started meanwhile: stop it first; nothing was reset")
    if plan.live:
        assert plan.accounts_root is not None
        _check_not_holding(plan.accounts_root, plan.exchange, plan.account, plan.symbol, name)
    done = []
    removed = 0
    for entry in plan.state_dir.iterdir() if plan.state_dir.is_dir() else ():
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except PermissionError:
            raise PermissionDenied(f"cannot remove {entry}: permission denied (use sudo)") from None
    done.append(f"state cleared: removed {removed} entr{'y' if removed == 1 else 'ies'} from {plan.state_dir}"
                if removed else f"state: {plan.state_dir} was already empty")
    if plan.live:
        assert plan.accounts_root is not None
        retired = acct.mark_reset(plan.accounts_root, plan.exchange, plan.account, name, plan.symbol)
        where = acct.describe(plan.exchange, plan.account)
        if retired:
            done.append(f"client-id epochs {', '.join(map(str, retired))} retired on {where}; the next start "
                        f"cancels its open orders on {plan.symbol} carrying them, then places a fresh grid")
        else:
            done.append(f"no client-id epochs recorded for it on {where}: no old order of it to cancel")
    if plan.failed:
        with ctx.manager() as m:
            m.reset_failed(unit_name(name))
        done.append(f"{unit_name(name)} is no longer marked failed")
    done.append(f"start it with `gridbot {'--user ' if ctx.user else ''}start {name}`")
    return done


# -- logs ---------------------------------------------------------------------------------------
JOURNAL_GROUPS = ("systemd-journal", "adm", "wheel")  # journalctl shows the system journal to these


def check_journal_access(ctx: Context) -> None:
    """Unprivileged journalctl silently shows only the caller's own lines ('-- No entries --'): say
    which right is missing instead."""
    if ctx.user or os.geteuid() == 0:
        return
    from .systemd import _in_group

    states = [_in_group(g) for g in JOURNAL_GROUPS]
    if any(active for _listed, active in states):
        return
    if any(listed for listed, _active in states):
        raise PermissionDenied("reading gridbot's logs: your systemd-journal membership is not active yet; "
                               "log out and in again (or `newgrp systemd-journal`), or use sudo")
    raise PermissionDenied("reading gridbot's logs needs root (sudo) or membership of the systemd-journal group")


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
