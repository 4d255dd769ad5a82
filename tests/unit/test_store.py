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


OLD_SCHEMA = """
CREATE TABLE orders (
    client_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, side TEXT NOT NULL, price TEXT, qty TEXT NOT NULL,
    gap INTEGER, status TEXT NOT NULL, filled TEXT NOT NULL DEFAULT '0',
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX orders_status ON orders(status);
CREATE TABLE fills (
    trade_id TEXT PRIMARY KEY, client_id INTEGER NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL,
    qty TEXT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL, is_maker INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL);
CREATE INDEX fills_ts ON fills(ts_ms);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO orders VALUES (7, 'limit', 'buy', '99.5', '0.5', 3, 'open', '0', 1000, 1000, '');
INSERT INTO fills VALUES ('p1', 6, 'buy', '99', '1', '0.001', 'SOL', 1, 1234);
INSERT INTO kv VALUES ('grid', '{"exchange":"paper","symbol":"SOL_USDC"}');
"""


def test_a_database_from_before_order_identity_opens_and_is_migrated(tmp_path):
    db = sqlite3.connect(str(tmp_path / "gridbot.sqlite"))
    db.executescript(OLD_SCHEMA)
    db.close()
    s = Store.open(tmp_path)
    row = s.order(7)
    assert (row.status, row.order_id, row.exchange, row.symbol) == (OPEN, "", "", "")
    assert s.fills()[0][:2] == ("p1", 6) and s.last_fill_ms() == 1234
    assert s.backfill_market("paper", "SOL_USDC") == 1
    assert (s.order(7).exchange, s.order(7).symbol) == ("paper", "SOL_USDC") and s.has_fill("p1", "SOL_USDC")
    # trade ids are per market now: the same id on another market is another fill; on this one, a duplicate
    assert s.add_fill(Fill("p1", 9, "ETH_USDC", Side.buy, D(1), D(1), D(0), "ETH", True, 2000, "E9")) is True
    assert s.add_fill(fill("p1")) is False
    s.set_status(7, FILLED, D("0.5"), order_id="P7")
    assert s.order(7).order_id == "P7"
    s.close()
    assert Store.open(tmp_path).fill_count() == 2  # migrating twice is a no-op


def test_an_order_row_owns_only_its_own_venue_order():
    from gridbot.store import OrderRow

    row = OrderRow(7, "limit", "buy", D(1), D(1), 0, OPEN, D(0), "", "P7", "paper", "SOL_USDC")
    assert row.owns("SOL_USDC", "P7") and row.owns("SOL_USDC", "")  # the venue did not say: client id + symbol
    assert not row.owns("SOL_USDC", "P8") and not row.owns("SOL_USDT", "P7")
    unknown = OrderRow(7, "limit", "buy", D(1), D(1), 0, PENDING, D(0), "", "", "paper", "SOL_USDC")
    assert unknown.owns("SOL_USDC", "P8") and not unknown.owns("ETH_USDC", "P8")
