import sqlite3
from decimal import Decimal as D

import pytest

from gridbot.exchange.base import Fill, Side
from gridbot.store import CANCELLED, FILLED, OPEN, PENDING, Store, StoreError


def fill(tid="t1", cid=1, qty=D(1)) -> Fill:
    return Fill(tid, cid, "SOL_USDC", Side.buy, D("99.5"), qty, D("0.001"), "SOL", True, 1234)


def test_pragmas_wal_and_full_sync(tmp_path):
    s = Store.open(tmp_path)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_intent_then_status(tmp_path):
    s = Store.open(tmp_path)
    s.add_intent(7, "limit", "buy", D("99.50"), D("0.5"), gap=3)
    (row,) = s.orders(PENDING)
    assert (row.client_id, row.side, row.price, row.qty, row.gap) == (7, "buy", D("99.50"), D("0.5"), 3)
    s.set_status(7, OPEN)
    s.set_status(7, FILLED, D("0.5"))
    assert s.orders(PENDING) == [] and s.order(7).status == FILLED and s.order(7).filled == D("0.5")
    s.add_intent(8, "market", "sell", None, D(1))
    assert s.order(8).price is None and [r.client_id for r in s.orders(PENDING, FILLED)] == [7, 8]


def test_fills_are_recorded_once(tmp_path):
    s = Store.open(tmp_path)
    assert s.add_fill(fill()) is True
    assert s.add_fill(fill()) is False
    assert s.add_fill(fill("t2")) is True
    assert s.fill_count() == 2 and s.has_fill("t2") and s.last_fill_ms() == 1234
    assert s.fills()[0][:5] == ("t1", 1, "buy", "99.5", "1")


def test_transaction_is_atomic_and_nests(tmp_path):
    s = Store.open(tmp_path)
    with pytest.raises(RuntimeError):
        with s.tx():
            s.add_intent(1, "limit", "buy", D(1), D(1))  # nested tx joins the outer one
            s.put("strategy", {"x": 1})
            raise RuntimeError("crash mid-way")
    assert s.orders() == [] and s.get("strategy") is None
    with s.tx():
        s.add_intent(1, "limit", "buy", D(1), D(1))
        s.set_status(1, CANCELLED)
    assert s.order(1).status == CANCELLED


def test_committed_data_survives_reopen(tmp_path):
    s = Store.open(tmp_path)
    s.put("strategy", {"a": [1, "2"]})
    s.add_fill(fill())
    # a second connection (another process after kill -9) sees everything committed
    t = Store.open(tmp_path)
    assert t.get("strategy") == {"a": [1, "2"]} and t.fill_count() == 1


def test_unopenable_path_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="cannot open state database"):
        Store(tmp_path / "f" / "db.sqlite")


def test_garbage_file_is_reported(tmp_path):
    (tmp_path / "gridbot.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises((StoreError, sqlite3.DatabaseError)):
        Store.open(tmp_path)
