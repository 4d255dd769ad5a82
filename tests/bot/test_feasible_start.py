"""The bot checks that its grid can trade before it places one (``StartupMixin.check_feasible``), with
what the live venue reports: the same ``feasibility.problems`` that ``gridbot validate`` runs, so a
refusal names the same problems. A refusal happens before any order is sent or cancelled. A live
price outside the range is a waiting grid, not an error. (The paper side, and the agreement with
``validate`` over random configs, is tests/unit/test_feasibility.py.)"""
from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest

from gridbot import strategy as st
from gridbot.errors import ConfigError
from gridbot.store import OPEN
from gridbot_testsupport.fake_backpack import FakeBackpack

from .conftest import PUB, config, make_bot, posts, run, start, venue_ids


def refusal(b) -> str:
    """Bot ``b``'s start-up refusal (a ConfigError must end it), in its words."""
    async def body():
        with pytest.raises(ConfigError) as exc:
            await start(b)
        return str(exc.value)
    return run(b, body)


def test_a_grid_the_accounts_quote_cannot_pay_for_is_refused_before_any_order(tmp_path):
    # 4 levels 140..160 x 0.5 SOL: two buys (142.5 USDC) and 1.001 SOL bought at market (~150 USDC)
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(100)}, prices={"SOL_USDC": D(150)}) as fake:
        msg = refusal(make_bot(tmp_path, fake))
        assert msg.startswith("the grid cannot trade on backpack SOL_USDC: the grid needs ")
        assert "buying 1.01 SOL at market for the 2 sell(s)" in msg and "the USDC balance is 100" in msg, msg
        assert posts(fake) == [] and venue_ids(fake) == []


def test_coins_on_the_account_are_not_the_grids_unless_granted(tmp_path):
    with FakeBackpack(PUB, balances={"SOL": D(1), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        msg = refusal(make_bot(tmp_path, fake, config(fake.base_url, base_investment="5")))
        assert "base_investment 5 SOL is more than the 1 SOL available on the account" in msg, msg
        assert posts(fake) == []


def test_a_live_price_outside_the_range_is_a_waiting_grid(tmp_path, caplog):
    caplog.set_level(logging.INFO, "gridbot")
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(100)}) as fake:
        b = make_bot(tmp_path, fake)
        run(b, lambda: start(b))
        assert b.state is not None and b.state.phase is st.WAITING
        assert posts(fake) == []
        assert "the price 100 is outside the grid 140.00..160.00: the grid waits" in caplog.text


def test_an_infeasible_new_grid_leaves_the_running_one_alone(tmp_path):
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        b = make_bot(tmp_path, fake)
        run(b, lambda: start(b))
        before, grid = venue_ids(fake), b.store.get("grid")
        assert len(before) == 4
        b2 = make_bot(tmp_path, fake, config(fake.base_url, qty_per_level="100"))  # a restart with 200x the size
        msg = refusal(b2)
        assert "the grid needs " in msg and "USDC" in msg, msg
        assert venue_ids(fake) == before  # on_stop=keep: the bot does not run, its orders stay as at any stop
        assert b2.store.get("grid") == grid


def test_an_infeasible_new_grid_with_on_stop_cancel_cancels_the_old_grid_and_keeps_its_books(tmp_path):
    """The bot will not run the new grid: its old orders go as on_stop says for any stop, never left
    resting unmanaged against the user's wish; the state still describes the old grid."""
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        b = make_bot(tmp_path, fake, config(fake.base_url, on_stop="cancel"))
        run(b, lambda: start(b))
        grid = b.store.get("grid")
        assert len(venue_ids(fake)) == 4
        b2 = make_bot(tmp_path, fake, config(fake.base_url, on_stop="cancel", qty_per_level="100"))
        refusal(b2)
        assert venue_ids(fake) == []  # cancelled, as a stop with on_stop=cancel would
        assert b2.store.get("grid") == grid and not b2.store.orders(OPEN)


def test_a_feasible_new_grid_counts_the_quote_its_old_buys_free(tmp_path):
    """The old grid's buys lock 142.5 USDC; with nothing else available the new grid (same size, range
    shifted one tick) is still affordable from what retiring them frees, and is placed."""
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        b = make_bot(tmp_path, fake)
        run(b, lambda: start(b))
        fake.move_balance("USDC", available=D(0))  # the user spent the rest
        b2 = make_bot(tmp_path, fake, config(fake.base_url, lower_price="139.99", upper_price="159.99"))
        run(b2, lambda: start(b2))
        assert b2.state is not None and b2.state.phase is st.RUNNING
        assert st.missing(b2.state) == []
