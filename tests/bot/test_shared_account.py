"""Many instances on ONE exchange account (issue 8): each owns exactly its own orders, fills and coins.

Real pieces throughout: the runner's ``Bot``, the Backpack adapter (one per instance, same key) over
HTTP to one in-process fake Backpack (several markets on one shared balance), and the real account
registry (``gridbot.account``: claims, epochs, the fresh-start check and ``gridbot reset``'s marker).
The test's own ledger only watches: which instance placed which venue order (the placement answer's
order id) and which instance asked to cancel what.
"""
from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as hs

from gridbot import account
from gridbot import strategy as st
from gridbot.account import AccountError, claim, state_is_empty
from gridbot.exchange import _sign
from gridbot.exchange.backpack import BackpackExchange
from gridbot.exchange.base import Order, Side
from gridbot.models import GridConfig
from gridbot.notify import Notifier
from gridbot.bot.main import fresh_start_step
from gridbot.runner import RESERVED_EPOCH, Bot
from gridbot.store import OPEN, Store

from gridbot_testsupport._fake_account import BID, MarketSpec
from gridbot_testsupport.fake_backpack import DEFAULT_MARKETS, FakeBackpack, _Reply

SECRET = base64.b64encode(bytes(range(32))).decode()
PUB = _sign.public_key_b64(_sign.load_private_key(SECRET))
LABEL = "main"


# ------------------------------------------------------------------ the watcher

@dataclass
class Ledger:
    """Who did what on the venue, as seen at the adapters (the venue itself does not know instances)."""

    placed: dict[str, tuple[str, int]] = field(default_factory=dict)  # venue order id -> (instance, generation)
    cancels: list[tuple[tuple[str, int], str, int]] = field(default_factory=list)  # (who, symbol, client id)


class Watched(BackpackExchange):
    """The real adapter; it only notes which venue order each placement made and each cancel asked for."""

    def __init__(self, cfg: GridConfig, who: tuple[str, int], ledger: Ledger,
                 transport: Optional[httpx.AsyncBaseTransport] = None) -> None:
        super().__init__(cfg.backpack, cfg.symbol, PUB, SECRET, min_interval_s=0, transport=transport)
        self.who, self.ledger = who, ledger

    def _note(self, o: Order) -> Order:
        assert o.exchange_id and o.exchange_id not in self.ledger.placed
        self.ledger.placed[o.exchange_id] = self.who
        return o

    async def place_limit(self, symbol: str, side: Side, price: D, qty: D, client_id: int,
                          post_only: bool = True) -> Order:
        return self._note(await super().place_limit(symbol, side, price, qty, client_id, post_only))

    async def place_market(self, symbol: str, side: Side, qty: D, client_id: int) -> Order:
        return self._note(await super().place_market(symbol, side, qty, client_id))

    async def cancel(self, symbol: str, client_id: int) -> None:
        self.ledger.cancels.append((self.who, symbol, client_id))
        await super().cancel(symbol, client_id)


# ------------------------------------------------------------------ one instance, as _amain builds it

def live(symbol: str = "SOL_USDC", base_url: str = "", **over: Any) -> GridConfig:
    d: dict[str, Any] = {"exchange": "backpack", "symbol": symbol, "lower_price": "140", "upper_price": "160",
                         "levels": 4, "qty_per_level": "0.5", "on_stop": "keep",
                         "backpack": {"base_url": base_url, "account": LABEL}}
    d.update(over)
    return GridConfig.model_validate(d)


class Instance:
    """One instance name: its config, state directory and (while running) claim, adapter and Bot.
    ``generation`` counts its states: a state loss + reset starts the next one."""

    def __init__(self, name: str, cfg: GridConfig, tmp: Path, root: Path, ledger: Ledger,
                 transport: Optional[httpx.AsyncBaseTransport] = None) -> None:
        self.name, self.cfg, self.root, self.ledger, self.transport = name, cfg, root, ledger, transport
        self.dir = tmp / "state" / name
        self.cfg_dir = tmp / "conf"
        self.cfg_dir.mkdir(parents=True, exist_ok=True)
        self.generation = 0
        self.bot: Optional[Bot] = None
        self.claim: Optional[account.Claim] = None
        self.lost: list[dict[str, D]] = []  # the books of states lost so far (frozen at their loss)

    @property
    def who(self) -> tuple[str, int]:
        return self.name, self.generation

    async def open(self) -> Bot:
        """What ``runner.main``/``_amain`` do: claim the symbol, open the store, and for a fresh live
        state give the Bot the fresh-start step (the account's check, the epoch reserved), which its
        ``start_up`` runs before opening the state; then start up to READY."""
        assert self.bot is None
        self.claim = claim(self.name, self.cfg, self.root)
        store = Store.open(self.dir)
        ex = Watched(self.cfg, self.who, self.ledger, self.transport)
        try:
            fresh = fresh_start_step(self.claim, ex, store) if state_is_empty(store) else None
            bot = Bot(self.name, self.cfg, store, ex, Notifier(""), self.cfg_dir, self.claim.new_epoch,
                      fresh_start=fresh)
            bot._stop_event = asyncio.Event()
            # the venue is always up here: start_up would retry an ExchangeError, so a hang is a failure
            assert await asyncio.wait_for(bot.start_up(), 60)
            if fresh is not None:
                assert bot.fresh_start is None and store.get(RESERVED_EPOCH) == bot.state.epoch
        except BaseException:
            await ex.close()
            store.close()
            self.claim.release()
            self.claim = None
            raise
        self.bot = bot
        return bot

    async def stop(self) -> None:
        """SIGTERM: on_stop applies."""
        assert self.bot is not None and self.claim is not None
        await self.bot.shutdown()
        self.bot.store.close()
        self.claim.release()
        self.bot = self.claim = None

    async def crash(self) -> None:
        """kill -9: nothing applied, the state stays as it was last written."""
        assert self.bot is not None and self.claim is not None
        await self.bot.ex.close()
        self.bot.store.close()
        self.claim.release()
        self.bot = self.claim = None

    async def lose_state_and_reset(self, ctx: Any, emptied: bool) -> None:
        """The state is lost while the instance is down (its directory gone, or emptied); a start refuses
        and touches nothing; ``gridbot reset NAME`` (the CLI's own logic: it clears the state and leaves
        the reset marker in the account registry) lets the next start cancel the old orders, begin clean."""
        from gridbot import fleet

        assert self.bot is None and self.dir == ctx.state_dir(self.name)
        books = books_of_store(self.dir)
        if emptied:
            for p in self.dir.iterdir():
                p.unlink()
        else:
            shutil.rmtree(self.dir)
        before = (dict(self.ledger.placed), list(self.ledger.cancels))
        with pytest.raises(AccountError, match=f"run `gridbot reset {self.name}`"):
            await self.open()
        assert (dict(self.ledger.placed), list(self.ledger.cancels)) == before  # the refusal touched nothing
        (self.cfg_dir / f"{self.name}.json").write_text(self.cfg.model_dump_json(by_alias=True, exclude_none=True))
        done = fleet.reset_apply(ctx, fleet.reset_plan(ctx, self.name))
        assert any("retired" in line for line in done), done
        assert account.history(self.root, "backpack", LABEL, self.name)["cancel_on_start"]
        self.lost.append(books)
        self.generation += 1


def books_of_store(state_dir: Path) -> dict[str, D]:
    """An instance's books as its state holds them: what it owns of each asset (base: its budget plus
    what its fills moved; quote: what its fills moved)."""
    store = Store.open(state_dir)
    try:
        snap = store.get("strategy")
    finally:
        store.close()
    if snap is None:
        return {}
    s = st.GridState.from_dict(snap)
    return {s.p.base: s.inventory, s.p.quote: s.quote_delta}


def books(bot: Bot) -> dict[str, D]:
    s = bot.state
    assert s is not None
    return {s.p.base: s.inventory, s.p.quote: s.quote_delta}


def add(into: Counter, more: dict[str, D]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, D(0)) + v


def venue_totals(fake: FakeBackpack) -> dict[str, D]:
    a = fake.account
    return {k: a.available[k] + a.locked.get(k, D(0)) for k in a.available}


def fills_placed_by(fake: FakeBackpack, ledger: Ledger, who: tuple[str, int]) -> list[Any]:
    return [f for f in fake.account.fills if ledger.placed.get(f.order_id) == who]


def venue_books(fake: FakeBackpack, fills: list[Any]) -> dict[str, D]:
    """What these venue fills moved, per asset, and the fees they paid (Backpack: fee from what is received)."""
    out: dict[str, D] = {}
    for f in fills:
        m = fake.account.markets[f.symbol]
        if f.side == BID:
            moves = {m.base: f.qty - f.fee, m.quote: -f.price * f.qty}
        else:
            moves = {m.base: -f.qty, m.quote: f.price * f.qty - f.fee}
        for k, v in moves.items():
            out[k] = out.get(k, D(0)) + v
        out["fee:" + f.fee_symbol] = out.get("fee:" + f.fee_symbol, D(0)) + f.fee
    return out


def check_instance(fake: FakeBackpack, ledger: Ledger, inst: Instance) -> None:
    """The running instance's books are the venue's view of its own orders and fills, and nothing else."""
    bot = inst.bot
    assert bot is not None and bot.state is not None
    s = bot.state
    mine = fills_placed_by(fake, ledger, inst.who)
    # it booked exactly the fills of the orders it placed: none missing, none of another's
    assert {(r[0]) for r in bot.store.fills()} == {str(f.trade_id) for f in mine}, inst.name
    assert s.fills == len(mine), inst.name  # (no re-grid here: a re-grid would keep counting)
    vb = venue_books(fake, mine)
    m = fake.account.markets[inst.cfg.symbol]
    assert s.base_delta == vb.get(m.base, D(0)), inst.name
    assert s.quote_delta == vb.get(m.quote, D(0)), inst.name
    assert s.fees_base == vb.get("fee:" + m.base, D(0)) and s.fees_quote == vb.get("fee:" + m.quote, D(0)), inst.name
    # its open orders are exactly the venue's open orders that it placed
    venue_open = {o.client_id for o in fake.open_orders() if ledger.placed.get(o.id) == inst.who}
    assert set(s.by_cid) == venue_open, inst.name
    assert {r.client_id for r in bot.store.orders(OPEN) if r.kind == "limit"} == venue_open, inst.name
    # every order id it recorded is a venue order it placed itself, under the same client id and symbol
    for r in bot.store.orders():
        if r.order_id:
            o = fake.account.orders[r.order_id]
            assert ledger.placed[r.order_id] == inst.who and o.client_id == r.client_id and o.symbol == r.symbol


def check_ownership(fake: FakeBackpack, ledger: Ledger) -> None:
    """No client id was ever used twice on the account, and every cancel hit an order of the same
    instance name (its current state, or a lost state's order cancelled by the reset's start)."""
    ids = [o.client_id for o in fake.account.orders.values() if o.client_id is not None]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert set(ledger.placed) == set(fake.account.orders)  # nothing reached the venue that we did not see
    for who, symbol, cid in ledger.cancels:
        (o,) = [o for o in fake.account.orders.values() if o.client_id == cid and o.symbol == symbol]
        assert ledger.placed[o.id][0] == who[0], (who, ledger.placed[o.id])


# ------------------------------------------------------------------ two instances, shared SOL

def test_two_instances_on_one_account_sharing_sol_each_own_only_theirs(tmp_path):
    user = {"SOL": D(10), "USDC": D(10000), "USDT": D(10000), "ETH": D(1)}
    root = tmp_path / "accounts"
    ledger = Ledger()
    with FakeBackpack(PUB, balances=dict(user)) as fake:
        a = Instance("bp_sol_usdc", live("SOL_USDC", fake.base_url, on_stop="cancel"), tmp_path, root, ledger)
        b = Instance("bp_sol_usdt", live("SOL_USDT", fake.base_url, lower_price="142", upper_price="158",
                                         qty_per_level="0.3"), tmp_path, root, ledger)

        def check() -> None:
            for inst in (a, b):
                if inst.bot is not None:
                    check_instance(fake, ledger, inst)
            check_ownership(fake, ledger)
            total = Counter(user)
            for inst in (a, b):
                add(total, books(inst.bot) if inst.bot is not None else books_of_store(inst.dir))
            assert venue_totals(fake) == {k: total.get(k, D(0)) for k in venue_totals(fake)}

        async def go() -> None:
            await a.open()
            await b.open()
            check()
            ea = account.history(root, "backpack", LABEL, a.name)["epochs"]
            eb = account.history(root, "backpack", LABEL, b.name)["epochs"]
            assert ea and eb and not set(ea) & set(eb)
            assert {o.client_id >> st.COUNTER_BITS for o in fake.open_orders("SOL_USDC")} <= set(ea)
            assert {o.client_id >> st.COUNTER_BITS for o in fake.open_orders("SOL_USDT")} <= set(eb)
            path_a = ["145", "150", "155", "150", "145", "140", "150", "160", "150"]
            path_b = ["150", "146", "154", "150", "146", "142", "150", "158", "150"]
            for pa, pb in zip(path_a, path_b):
                fake.set_price(D(pa), "SOL_USDC")
                fake.set_price(D(pb), "SOL_USDT")
                for _ in range(2):  # the fills, then the counter-orders' turn
                    await a.bot.cycle()
                    await b.bot.cycle()
                check()
            assert a.bot.state.fills >= 6 and b.bot.state.fills >= 6  # beyond each one's rebalance
            assert a.bot.state.pairs >= 2 and b.bot.state.pairs >= 2
            # a stops with on_stop=cancel: its orders go, b's stay open on the venue and in b's books
            b_open = set(b.bot.state.by_cid)
            assert b_open
            await a.stop()
            assert not [o for o in fake.open_orders() if ledger.placed[o.id] == a.who]
            assert {o.client_id for o in fake.open_orders("SOL_USDT")} == b_open
            assert all(who == a.who for who, _, _ in ledger.cancels)
            check()
            # b keeps trading alone on the shared SOL
            for pb in ("146", "142", "150", "154", "150"):
                fake.set_price(D(pb), "SOL_USDT")
                for _ in range(2):
                    await b.bot.cycle()
                check()
            await b.bot.reconcile()  # a full reconcile finds nothing of a's to adopt or cancel
            check()
            await b.crash()

        asyncio.run(go())
        # the user's coins beside the grids: the 1 ETH untouched, and the 10 SOL still there on top of
        # what the two grids own
        totals = venue_totals(fake)
        assert totals["ETH"] == D(1)
        own_a, own_b = books_of_store(a.dir), books_of_store(b.dir)
        assert totals["SOL"] == D(10) + own_a["SOL"] + own_b["SOL"]
        assert totals["USDC"] == D(10000) + own_a["USDC"] and totals["USDT"] == D(10000) + own_b["USDT"]


# ------------------------------------------------------------------ the property: many instances, one account

class InProcess(httpx.AsyncBaseTransport):
    """The fake's own request handling (signature checks, the account engine, the wire format),
    called without a socket: the same answers as over HTTP, fast enough for a property test."""

    def __init__(self, fake: FakeBackpack) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            reply = self.fake.handle(request.method, request.url.raw_path.decode(), request.headers, body)
        except _Reply as r:
            reply = r
        return httpx.Response(reply.status, json=reply.body, headers=reply.headers)


ETH_USDT = MarketSpec("ETH_USDT", "ETH", "USDT", tick=D("0.01"), step=D("0.0001"), min_qty=D("0.0001"))
MARKETS = (*DEFAULT_MARKETS, ETH_USDT)  # SOL_USDC, SOL_USDT, ETH_USDC, ETH_USDT: SOL, ETH, USDC, USDT shared
START = {"SOL_USDC": D(150), "SOL_USDT": D(150), "ETH_USDC": D(3000), "ETH_USDT": D(3000)}
SIZES = {"SOL": (D("0.1"), 5), "ETH": (D("0.002"), 5)}  # qty_per_level = unit * 1..n
USER = {"SOL": D(40), "ETH": D(2), "USDC": D(100000), "USDT": D(100000)}  # the user's own coins


def price_at(symbol: str, pct: int) -> D:
    return (START[symbol] * (100 + pct) / 100).quantize(D("0.01"))


@hs.composite
def grid_configs(draw: Any, symbol: str) -> dict[str, Any]:
    base = symbol.split("_")[0]
    below, above = draw(hs.integers(4, 15)), draw(hs.integers(4, 15))
    unit, n = SIZES[base]
    d: dict[str, Any] = {
        "symbol": symbol, "lower_price": str(price_at(symbol, -below)), "upper_price": str(price_at(symbol, above)),
        "levels": draw(hs.integers(2, 6)), "qty_per_level": str(unit * draw(hs.integers(1, n))),
        "on_stop": draw(hs.sampled_from(["keep", "cancel"])),
        "base_investment": str(unit * draw(hs.sampled_from([0, 0, 1, 3]))),
    }
    if draw(hs.booleans()):
        d["stop_loss"] = str(price_at(symbol, -below - draw(hs.integers(1, 4))))
        d["on_trigger"] = draw(hs.sampled_from(["sell", "cancel"]))
    return d


@hs.composite
def scenarios(draw: Any) -> tuple[list[dict[str, Any]], list[tuple]]:
    symbols = draw(hs.lists(hs.sampled_from(list(START)), min_size=2, max_size=4, unique=True))
    configs = [draw(grid_configs(s)) for s in symbols]
    n = len(symbols)
    pct = hs.integers(-19, 19)
    step = hs.one_of(
        hs.tuples(hs.just("move"), hs.integers(0, n - 1), pct),
        hs.tuples(hs.just("move"), hs.integers(0, n - 1), pct),
        hs.tuples(hs.just("restart"), hs.integers(0, n - 1), hs.booleans(),
                  hs.none() | hs.tuples(hs.integers(0, n - 1), pct)),
        hs.tuples(hs.just("lose"), hs.integers(0, n - 1), hs.booleans()),
        hs.tuples(hs.just("user"), hs.integers(0, len(USER) - 1), hs.integers(-60, 30)),
    )
    return configs, draw(hs.lists(step, min_size=3, max_size=12))


async def settle(fleet: list[Instance]) -> None:
    for _ in range(2):  # fills, then what the fills asked for
        for inst in fleet:
            assert inst.bot is not None
            await inst.bot.cycle()


def check_account(fake: FakeBackpack, ledger: Ledger, fleet: list[Instance], user: dict[str, D],
                  settled: bool = True) -> None:
    """The sum of the instances' books (their states, and the states they lost, as those were when
    lost) plus the user's untouched coins is the account, to the last unit; and each instance owns
    exactly its own. Between a price move and the bots' next look (``settled`` False, or an instance
    that is down) an instance counts with its books plus the fills its own orders made on the venue
    since (which it must book when it looks: checked once settled)."""
    granted: Counter = Counter()
    total: Counter = Counter()
    for inst in fleet:
        if inst.bot is not None and settled:
            assert inst.bot.state is not None
            check_instance(fake, ledger, inst)
            add(total, books(inst.bot))
        else:
            if inst.bot is not None:
                add(total, books(inst.bot))
                booked = {r[0] for r in inst.bot.store.fills()}
            else:
                add(total, books_of_store(inst.dir))
                store = Store.open(inst.dir)
                try:
                    booked = {r[0] for r in store.fills()}
                finally:
                    store.close()
            meanwhile = [f for f in fills_placed_by(fake, ledger, inst.who) if str(f.trade_id) not in booked]
            add(total, {k: v for k, v in venue_books(fake, meanwhile).items() if not k.startswith("fee:")})
        for lost in inst.lost:
            add(total, lost)
        grants = 1 + len(inst.lost)  # each state was granted base_investment of the user's base
        add(granted, {inst.cfg.base_asset: inst.cfg.base_investment * grants})
    untouched = {k: v - granted.get(k, D(0)) for k, v in user.items()}
    assert all(v >= 0 for v in untouched.values())
    add(total, untouched)
    have = venue_totals(fake)
    assert have == {k: total.get(k, D(0)) for k in have}, (have, dict(total))
    check_ownership(fake, ledger)


@settings(max_examples=int(os.environ.get("GRIDBOT_SHARED_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_many_instances_on_one_account_books_sum_to_the_account(scenario):
    import tempfile

    configs, steps = scenario
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        ledger = Ledger()
        user = dict(USER)
        mp = pytest.MonkeyPatch()
        mp.setenv("XDG_STATE_HOME", str(tmp / "xdg"))  # a --user fleet: state in tmp/xdg/gridbot/NAME
        mp.setenv("GRIDBOT_CONFIG_DIR", str(tmp / "conf"))
        mp.delenv("GRIDBOT_ACCOUNTS_DIR", raising=False)
        from gridbot import fleet
        from gridbot.fleet import removal

        mp.setattr(removal, "_unit_state", lambda ctx, name: "inactive")  # no systemd here: the bots run in-process
        ctx = fleet.Context(user=True)
        root = account.accounts_root(ctx.state_root)
        fake = FakeBackpack(PUB, markets=MARKETS, prices=dict(START), balances=dict(USER))
        transport = InProcess(fake)
        fleet = [Instance(f"bp_{i}", live(base_url="http://127.0.0.1:9", **c), Path(tmp_s), root, ledger, transport)
                 for i, c in enumerate(configs)]
        for inst in fleet:
            inst.dir = ctx.state_dir(inst.name)  # where `gridbot reset` looks

        async def go() -> None:
            try:
                for inst in fleet:
                    await inst.open()
                await settle(fleet)
                check_account(fake, ledger, fleet, user)
                for s in steps:
                    if s[0] == "move":
                        sym = fleet[s[1]].cfg.symbol
                        fake.set_price(price_at(sym, s[2]), sym)
                        check_account(fake, ledger, fleet, user, settled=False)
                    elif s[0] == "user":  # the user deposits or spends some of their own coins
                        asset = sorted(user)[s[1]]
                        delta = (user[asset] * s[2] / 100).quantize(D("0.01"))
                        delta = max(delta, -fake.account.available[asset])
                        fake.move_balance(asset, delta)
                        user[asset] += delta
                    elif s[0] == "restart":  # close and re-open on the same store; the market may move meanwhile
                        inst = fleet[s[1]]
                        await (inst.stop() if s[2] else inst.crash())
                        check_account(fake, ledger, fleet, user)
                        if s[3] is not None:
                            sym = fleet[s[3][0]].cfg.symbol
                            fake.set_price(price_at(sym, s[3][1]), sym)
                            check_account(fake, ledger, fleet, user, settled=False)
                        await inst.open()
                    else:  # the state is lost (a kill -9, then it is gone or emptied): refused, reset, clean start
                        inst = fleet[s[1]]
                        await inst.crash()
                        await inst.lose_state_and_reset(ctx, emptied=s[2])
                        await inst.open()
                    await settle(fleet)
                    check_account(fake, ledger, fleet, user)
                fills = len([f for f in fake.account.fills if f.client_id is not None])
                event(f"venue fills: {'0' if not fills else '1-9' if fills < 10 else '10+'}")
                event(f"instances: {len(fleet)}")
                if any(inst.lost for inst in fleet):
                    event("a state was lost and reset")
                if any(who[1] for who, _, _ in ledger.cancels):
                    event("a reset's start cancelled old orders")
                if any(inst.bot.state.phase == st.STOPPED for inst in fleet):
                    event("a stop-loss fired")
            finally:
                for inst in fleet:
                    if inst.bot is not None:
                        await inst.crash()

        try:
            asyncio.run(go())
        finally:
            mp.undo()
