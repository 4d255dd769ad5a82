"""``rm`` (stop, disable, delete; ``--purge`` also state, keys and drop-ins) and ``reset`` (a stopped
instance starts over: its state deleted on purpose, a live one's client-id epochs retired)."""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import account as acct
from .. import config as cfgmod
from .._units import check_name, instance_of, unit_name
from ..errors import GridbotError, JobFailed, PermissionDenied, UsageError
from .context import Context
from .lifecycle import ensure_template, known


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
    for state in (ctx.state_root / name, ctx.state_dir(name)):
        if state.is_dir() and not state.is_symlink():
            shutil.rmtree(state)
            removed.append(str(state))
    link = ctx.state_root / name  # systemd's symlink to the dynamic user's state, now dangling
    if link.is_symlink():
        link.unlink()
        removed.append(str(link))
    if not ctx.user:
        from .. import credentials

        paths = [p for p in credentials.key_paths(name) if p.exists()]
        if credentials.remove_keys(name):
            removed += [str(p) for p in paths]
    dropins = ctx.dropin_dir(name)
    if dropins.is_dir():
        shutil.rmtree(dropins)
        removed.append(str(dropins))
    return removed


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
    state_dir = ctx.state_dir(name)
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
