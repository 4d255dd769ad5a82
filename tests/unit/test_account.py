"""The account rules the bot enforces itself at start: one instance per account+symbol (a flock
held for the process's life), the account's shared rate budget, unique client-id epochs, and a
lost state that never starts silently."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from gridbot import account
from gridbot.account import AccountError, claim
from gridbot.exchange.base import Order, OrderStatus, Side
from gridbot.fleet import check_clashes
from gridbot.models import GridConfig

ROOT = Path(__file__).resolve().parents[2]


def live(symbol="SOL_USDC", account_label="main", poll=2.0, exchange="backpack") -> GridConfig:
    return GridConfig(exchange=exchange, symbol=symbol, lower_price=Decimal(100), upper_price=Decimal(200), levels=10,
                      qty_per_level=Decimal("0.1"),
                      backpack={"account": account_label, "poll_interval_s": poll, "base_url": "http://127.0.0.1:9"})


@pytest.fixture
def root(tmp_path):
    return tmp_path / "accounts"


# -- one instance per account+symbol ------------------------------------------------------------
def test_second_claim_on_one_account_and_symbol_is_refused_naming_the_first(root):
    with claim("bp_sol_01", live(), root) as first:
        before = (first.dir / "SOL_USDC.lock").read_text()
        with pytest.raises(AccountError) as exc:
            claim("bp_sol_02", live(), root)
        msg = str(exc.value)
        assert "\n" not in msg
        assert "bp_sol_01" in msg and f"pid {os.getpid()}" in msg and "SOL_USDC" in msg and "'main'" in msg
        assert (first.dir / "SOL_USDC.lock").read_text() == before  # the first holder's record untouched
        assert json.loads(before)["name"] == "bp_sol_01"


def test_different_symbols_or_accounts_both_run(root):
    with claim("a", live("SOL_USDC"), root), claim("b", live("SOL_USDT"), root), \
            claim("c", live("SOL_USDC", account_label="other"), root):
        assert sorted(p.name for p in root.iterdir()) == ["backpack-main", "backpack-other"]


def test_released_claim_can_be_taken_again(root):
    c = claim("a", live(), root)
    c.release()
    with claim("b", live(), root) as again:
        assert json.loads((again.dir / "SOL_USDC.lock").read_text())["name"] == "b"


def test_paper_instances_take_no_part(root):
    with claim("p1", live(exchange="paper"), root) as a, claim("p2", live(exchange="paper"), root) as b:
        assert not a.live and not b.live and a.new_epoch() == account.PAPER_EPOCH
    assert not root.exists()


HOLDER = textwrap.dedent("""
    import sys, time
    from decimal import Decimal
    from pathlib import Path
    from gridbot.account import claim
    from gridbot.models import GridConfig
    cfg = GridConfig(exchange="backpack", symbol="SOL_USDC", lower_price=Decimal(100), upper_price=Decimal(200),
                     levels=10, qty_per_level=Decimal("0.1"), backpack={"account": "main"})
    c = claim(sys.argv[1], cfg, Path(sys.argv[2]))
    print("held", flush=True)
    time.sleep(60)
""")


def test_lock_of_a_dead_holder_is_stale_and_taken(root):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, "gone_bot", str(root)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(AccountError, match=f"gone_bot \\(pid {proc.pid}\\)"):
            claim("new_bot", live(), root)
    finally:
        proc.send_signal(signal.SIGKILL)  # dies without any cleanup: the kernel drops the flock
        proc.wait(10)
    lock = account.account_dir(root, "backpack", "main") / "SOL_USDC.lock"
    assert json.loads(lock.read_text())["name"] == "gone_bot"  # the file is still there ...
    with claim("new_bot", live(), root):  # ... and stale
        assert json.loads(lock.read_text())["name"] == "new_bot"


def test_files_are_group_shared_despite_the_units_umask(root):
    root.mkdir()
    os.chmod(root, 0o2770)  # as tmpfiles.d makes it
    old = os.umask(0o077)
    try:
        with claim("a", live(), root) as c:
            c.new_epoch()
            d = c.dir
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o2770
            for f in ("SOL_USDC.lock", account.REGISTRY, account.MUTEX):
                assert stat.S_IMODE(os.stat(d / f).st_mode) == 0o660, f
    finally:
        os.umask(old)


# -- the shared rate budget ---------------------------------------------------------------------
def test_idle_requests_per_minute():
    # fills + ticker every 2 s, balances twice a minute, a reconcile (open orders, fills) twice a minute,
    # markets every 5 min, the clock every 10
    assert account.requests_per_min(2.0) == 60 + 2 + 4 + 0.3
    assert account.requests_per_min(60) == 24 + 2 + 4 + 0.3  # the loop still wakes every 5 s
    assert account.requests_per_min(2.0, reconcile_interval_s=10) == 60 + 2 + 12 + 0.3
    assert account.poll_budget() == 1500
    assert int(account.poll_budget() // account.requests_per_min(2.0)) == 22  # instances per account at 2 s


def test_claim_over_the_accounts_rate_budget_is_refused(root):
    a = claim("fast_a", live("A_USDC", poll=0.2), root)  # 606.3 requests/min each
    b = claim("fast_b", live("B_USDC", poll=0.2), root)
    with pytest.raises(AccountError, match=r"fast_a, fast_b.*~1819 requests/min, over 1500") as exc:
        claim("fast_c", live("C_USDC", poll=0.2), root)
    assert "poll_interval_s" in str(exc.value)
    with claim("slow_c", live("C_USDC", poll=2.0), root):  # 1279: fits; the refused claim left no lock behind
        pass
    b.release()  # a stopped instance no longer counts, though its lock file stays
    with claim("fast_c", live("C_USDC", poll=0.2), root):
        pass
    a.release()
    with claim("x", live("C_USDC", poll=0.2, account_label="sub"), root):  # another subaccount: its own budget
        pass


def test_fleet_check_uses_the_same_figures():
    symbols = [f"C{i}_USDC" for i in range(30)]
    check_clashes({s: live(s) for s in symbols[:22]})  # 22 x 66.3 = 1459
    with pytest.raises(Exception, match="~1525 requests/min"):
        check_clashes({s: live(s) for s in symbols[:23]})


# -- epochs -------------------------------------------------------------------------------------
def test_epochs_unique_across_names_and_calls_and_persisted(root):
    seen = []
    with claim("a", live("SOL_USDC"), root) as a, claim("b", live("ETH_USDC"), root) as b:
        for _ in range(50):
            seen += [a.new_epoch(), b.new_epoch()]
    assert len(set(seen)) == 100 and min(seen) == 1 and max(seen) == 100
    with claim("c", live("BTC_USDC"), root) as c:  # a new process (new claim) continues, never reuses
        assert c.new_epoch() == 101
    hist_a = account.history(root, "backpack", "main", "a")
    assert hist_a["epochs"] == seen[0::2]
    assert account.history(root, "backpack", "main", "b")["epochs"] == seen[1::2]
    with claim("d", live("SOL_USDC", account_label="sub"), root) as d:  # another account numbers on its own
        assert d.new_epoch() == 1
    assert all(0 < e <= account.MAX_EPOCH for e in seen)
    assert (seen[-1] << account.EPOCH_SHIFT | (2**18 - 1)) < 2**32


def test_epochs_run_out_loudly(root):
    with claim("a", live(), root) as a:
        a.new_epoch()
        reg = a.dir / account.REGISTRY
        data = json.loads(reg.read_text())
        data["next_epoch"] = account.MAX_EPOCH
        reg.write_text(json.dumps(data))
        assert a.new_epoch() == account.MAX_EPOCH
        with pytest.raises(AccountError, match="used all 16383"):
            a.new_epoch()


def test_corrupt_registry_refuses_rather_than_renumbering(root):
    with claim("a", live(), root) as a:
        (a.dir / account.REGISTRY).write_text("{not json")
        with pytest.raises(AccountError, match="not valid JSON"):
            a.new_epoch()
        assert (a.dir / account.REGISTRY).read_text() == "{not json"


def test_reserved_epoch_is_the_next_one_handed_out(root):
    with claim("a", live(), root) as a:
        e = a.reserve_epoch()
        assert account.history(root, "backpack", "main", "a")["epochs"] == [e]  # recorded at once
        assert a.new_epoch() == e and a.new_epoch() == e + 1


# -- lost state and reset -----------------------------------------------------------------------
def test_lost_state_verdicts():
    none = {"epochs": [], "retired": [], "cancel_on_start": None}
    assert account.lost_state_problem("a", none, None) is None  # first start ever
    had = dict(none, epochs=[3])
    msg = account.lost_state_problem("a", had, None)
    assert msg and "gridbot reset a" in msg and "\n" not in msg
    retired = dict(none, retired=[3])
    mine, other = 3 << 18 | 7, 4 << 18 | 7
    assert account.lost_state_problem("a", retired, [other, 12]) is None  # another state's orders, old ids
    assert "gridbot reset a" in account.lost_state_problem("a", retired, [other, mine])
    marked = dict(retired, cancel_on_start={"symbol": "SOL_USDC", "epochs": [3]})
    assert account.lost_state_problem("a", marked, [mine]) is None  # the next start cancels them


class FakeVenue:
    def __init__(self, orders: dict[str, list[int]]) -> None:
        self.orders = orders
        self.cancelled: list[tuple[str, int]] = []
        self.calls = 0

    async def open_orders(self, symbol: str) -> list[Order]:
        self.calls += 1
        return [Order(c, symbol, Side.buy, Decimal(100), Decimal(1), status=OrderStatus.open)
                for c in self.orders.get(symbol, [])]

    async def cancel(self, symbol: str, client_id: int) -> None:
        self.cancelled.append((symbol, client_id))
        self.orders[symbol].remove(client_id)


def test_fresh_start_after_lost_state_refused_without_touching_the_venue(root):
    with claim("a", live(), root) as a:
        a.new_epoch()
    venue = FakeVenue({"SOL_USDC": [1 << 18 | 1]})
    with claim("a", live(), root) as a:
        with pytest.raises(AccountError, match="run `gridbot reset a`"):
            asyncio.run(account.check_fresh_start(a, venue))
    assert venue.calls == 0 and venue.orders == {"SOL_USDC": [1 << 18 | 1]}
    assert account.history(root, "backpack", "main", "a")["epochs"] == [1]  # no new epoch issued


def test_reset_marker_cancels_only_the_names_old_orders_then_starts_clean(root):
    with claim("a", live(), root) as a, claim("b", live("SOL_USDT"), root) as b:
        ea1, ea2, eb = a.new_epoch(), a.new_epoch(), b.new_epoch()
    assert account.mark_reset(root, "backpack", "main", "a", "SOL_USDC") == [ea1, ea2]
    assert account.mark_reset(root, "backpack", "main", "nobody", "SOL_USDC") == []
    h = account.history(root, "backpack", "main", "a")
    assert h["epochs"] == [] and h["retired"] == [ea1, ea2]
    assert h["cancel_on_start"] == {"symbol": "SOL_USDC", "epochs": [ea1, ea2]}
    old = [ea1 << 18 | 5, ea2 << 18 | 1]
    others = [eb << 18 | 1, 42]  # b's order; an id from before epochs (nobody's to cancel)
    venue = FakeVenue({"SOL_USDC": old + others, "SOL_USDT": [ea1 << 18 | 9]})
    with claim("a", live(), root) as a:
        asyncio.run(account.check_fresh_start(a, venue))
        assert sorted(venue.cancelled) == sorted(("SOL_USDC", c) for c in old)
        assert venue.orders == {"SOL_USDC": others, "SOL_USDT": [ea1 << 18 | 9]}
        h = account.history(root, "backpack", "main", "a")
        assert h["cancel_on_start"] is None and h["retired"] == [ea1, ea2]
        new = a.new_epoch()  # reserved during the check: the registry knows a has state again
        assert new not in (ea1, ea2, eb) and h["epochs"] == [new]
    assert account.history(root, "backpack", "main", "b")["epochs"] == [eb]
    # state lost again after the clean start: refused again
    with claim("a", live(), root) as a, pytest.raises(AccountError, match="gridbot reset a"):
        asyncio.run(account.check_fresh_start(a, FakeVenue({})))


def test_stray_orders_of_retired_epochs_refuse_a_fresh_start(root):
    with claim("a", live(), root) as a:
        e = a.new_epoch()
    account.mark_reset(root, "backpack", "main", "a", "SOL_USDC")
    with claim("a", live(), root) as a:
        a.clear_cancel_marker()  # as if the marker's cancels were done, but an order is still open
        with pytest.raises(AccountError, match="still open"):
            asyncio.run(account.check_fresh_start(a, FakeVenue({"SOL_USDC": [e << 18 | 3]})))


class Store:
    def __init__(self, strategy=None, orders=(), fills=0):
        self.s, self.o, self.f = strategy, list(orders), fills

    def get(self, key):
        return self.s if key == "strategy" else None

    def orders(self):
        return self.o

    def fill_count(self):
        return self.f


def test_state_is_empty():
    assert account.state_is_empty(Store())
    assert not account.state_is_empty(Store(strategy={}))
    assert not account.state_is_empty(Store(orders=[1]))
    assert not account.state_is_empty(Store(fills=1))
