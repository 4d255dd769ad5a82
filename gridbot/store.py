"""The instance's durable state: one SQLite file in the state directory.

Write-ahead rules that make kill -9 harmless:

* an order row (status ``pending``) is committed *before* the exchange call that places it, so a
  restart can look the client id up and adopt the order or mark it not placed: never place twice;
* fills are keyed by the venue's ``trade_id`` (``INSERT OR IGNORE``), so re-reading fills after a
  restart records each exactly once;
* a fill, the strategy snapshot it produces and the intents it causes commit in one transaction.

Snapshots live in ``kv`` as JSON: ``strategy`` (GridState.to_dict), ``paper`` (venue + price stream),
``grid`` (config fingerprint of the running grid), ``profit`` (realised profit, fills, inventory),
``started_ms`` (when the running state began: fills are read from there, never over the account's
history), ``paper_cfg`` (the paper settings the simulated venue was built from).

Identity: each order row keeps the exchange and symbol it was placed on and the venue's order id
from the placement answer, so a fill or an open order is ours only if it matches what we recorded.
Databases from before these columns are migrated in place (``_migrate``): old state still opens.

Durability: WAL with ``synchronous=FULL``. WAL+NORMAL survives a process crash but may drop the last
commits on power loss; a dropped intent row would leave an order on the exchange we know nothing
about. FULL costs one fsync per commit, and we commit per fill or order, not per price tick.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import GridbotError
from .records import Fill

DB_NAME = "gridbot.sqlite"

PENDING, OPEN, FILLED, CANCELLED, REJECTED = "pending", "open", "filled", "cancelled", "rejected"
NOT_PLACED = "not_placed"  # a pending intent the venue never saw (crash before the call)
CLOSED = (FILLED, CANCELLED, REJECTED, NOT_PLACED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    client_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, side TEXT NOT NULL, price TEXT, qty TEXT NOT NULL,
    gap INTEGER, status TEXT NOT NULL, filled TEXT NOT NULL DEFAULT '0',
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
    order_id TEXT NOT NULL DEFAULT '', exchange TEXT NOT NULL DEFAULT '', symbol TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS fills (%s);
CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# trade ids are unique per market, not per account: a grid moved to another symbol must not lose the
# new market's fills to the old one's ids
_FILLS = """
    trade_id TEXT NOT NULL, client_id INTEGER NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL,
    qty TEXT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL, is_maker INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL, order_id TEXT NOT NULL DEFAULT '', symbol TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (symbol, trade_id)"""
_SCHEMA %= _FILLS
# columns added after the first release: (table, column, declaration) for ALTER TABLE ... ADD COLUMN
_ADDED = (("orders", "order_id", "TEXT NOT NULL DEFAULT ''"), ("orders", "exchange", "TEXT NOT NULL DEFAULT ''"),
          ("orders", "symbol", "TEXT NOT NULL DEFAULT ''"))
_COLS = "client_id, kind, side, price, qty, gap, status, filled, note, order_id, exchange, symbol"


class StoreError(GridbotError):
    """The state file cannot be opened or written."""


@dataclass(frozen=True)
class OrderRow:
    client_id: int
    kind: str  # "limit" or "market"
    side: str
    price: Optional[Decimal]
    qty: Decimal
    gap: Optional[int]
    status: str
    filled: Decimal
    note: str
    order_id: str = ""  # the venue's id from the placement answer; "" until known
    exchange: str = ""  # "" only for rows of a database older than these columns, not yet backfilled
    symbol: str = ""

    def owns(self, symbol: str, order_id: str) -> bool:
        """Is a venue order/fill with this symbol and venue order id the one we placed under this client id?
        By the venue's order id where both sides know it, by client id + symbol otherwise."""
        if self.symbol and symbol and symbol != self.symbol:
            return False
        return not (self.order_id and order_id and order_id != self.order_id)


def _ms() -> int:
    return int(time.time() * 1000)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.executescript(_SCHEMA)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open state database ({exc})") from None
        self._depth = 0

    def _migrate(self) -> None:
        """Add the columns newer code needs to a database written by an older version."""
        if "symbol" not in {r[1] for r in self.db.execute("PRAGMA table_info(fills)")}:
            # the primary key changes: rebuild the table (one transaction, so a crash leaves the old one)
            self.db.executescript(f"""BEGIN IMMEDIATE;
                ALTER TABLE fills RENAME TO fills_v1;
                CREATE TABLE fills ({_FILLS});
                INSERT INTO fills(trade_id, client_id, side, price, qty, fee, fee_asset, is_maker, ts_ms)
                    SELECT trade_id, client_id, side, price, qty, fee, fee_asset, is_maker, ts_ms FROM fills_v1;
                DROP TABLE fills_v1;
                CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms);
                COMMIT;""")
        for table, col, decl in _ADDED:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if col not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")

    @classmethod
    def open(cls, state_dir: Path) -> "Store":
        return cls(Path(state_dir) / DB_NAME)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One atomic unit; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    # ------------------------------------------------------------ orders
    def add_intent(self, client_id: int, kind: str, side: str, price: Optional[Decimal], qty: Decimal,
                   gap: Optional[int] = None, *, exchange: str = "", symbol: str = "") -> None:
        """Record that we are about to place this order (before the exchange call), and where."""
        now = _ms()
        with self.tx():
            self.db.execute(
                "INSERT OR REPLACE INTO orders(client_id, kind, side, price, qty, gap, status, filled, created_ms,"
                " updated_ms, exchange, symbol) VALUES (?,?,?,?,?,?,?,'0',?,?,?,?)",
                (client_id, kind, side, None if price is None else str(price), str(qty), gap, PENDING, now, now,
                 exchange, symbol))

    def backfill_market(self, exchange: str, symbol: str) -> int:
        """Rows from before orders and fills recorded their market belong to the grid running then."""
        with self.tx():
            self.db.execute("UPDATE fills SET symbol=? WHERE symbol=''", (symbol,))
            return self.db.execute("UPDATE orders SET exchange=?, symbol=? WHERE symbol=''",
                                   (exchange, symbol)).rowcount

    def first_order_ms(self) -> Optional[int]:
        return self.db.execute("SELECT min(created_ms) FROM orders").fetchone()[0]

    def set_status(self, client_id: int, status: str, filled: Optional[Decimal] = None, note: str = "",
                   order_id: str = "") -> None:
        """New status (and fill total); ``order_id``, the venue's id from its answer, is kept when given."""
        with self.tx():
            if order_id:
                self.db.execute("UPDATE orders SET order_id=? WHERE client_id=?", (order_id, client_id))
            if filled is None:
                self.db.execute("UPDATE orders SET status=?, updated_ms=?, note=? WHERE client_id=?",
                                (status, _ms(), note, client_id))
            else:
                self.db.execute("UPDATE orders SET status=?, filled=?, updated_ms=?, note=? WHERE client_id=?",
                                (status, str(filled), _ms(), note, client_id))

    def order(self, client_id: int) -> Optional[OrderRow]:
        r = self.db.execute(f"SELECT {_COLS} FROM orders WHERE client_id=?", (client_id,)).fetchone()
        return _row(r) if r else None

    def orders(self, *statuses: str) -> list[OrderRow]:
        sql = f"SELECT {_COLS} FROM orders"
        if statuses:
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
        return [_row(r) for r in self.db.execute(sql + " ORDER BY client_id", statuses)]

    # ------------------------------------------------------------ fills
    def add_fill(self, f: Fill) -> bool:
        """Record a fill once; False if this trade_id was already recorded."""
        with self.tx():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO fills(trade_id, client_id, side, price, qty, fee, fee_asset, is_maker, ts_ms,"
                " order_id, symbol) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (f.trade_id, f.client_id, f.side.value, str(f.price), str(f.qty), str(f.fee), f.fee_asset,
                 int(f.is_maker), f.timestamp_ms, f.order_id, f.symbol))
            return cur.rowcount == 1

    def has_fill(self, trade_id: str, symbol: Optional[str] = None) -> bool:
        sql, args = "SELECT 1 FROM fills WHERE trade_id=?", [trade_id]
        if symbol is not None:
            sql, args = sql + " AND symbol=?", args + [symbol]
        return self.db.execute(sql, args).fetchone() is not None

    def fill_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM fills").fetchone()[0]

    def last_fill_ms(self) -> int:
        return self.db.execute("SELECT coalesce(max(ts_ms), 0) FROM fills").fetchone()[0]

    def fills(self) -> list[tuple]:
        """All fills as (trade_id, client_id, side, price, qty, fee, fee_asset, ts_ms) rows."""
        return self.db.execute("SELECT trade_id, client_id, side, price, qty, fee, fee_asset, ts_ms FROM fills"
                               " ORDER BY ts_ms, trade_id").fetchall()

    # ------------------------------------------------------------ snapshots
    def put(self, key: str, value: Any) -> None:
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO kv VALUES (?,?)", (key, json.dumps(value, separators=(",", ":"))))

    def delete(self, key: str) -> None:
        with self.tx():
            self.db.execute("DELETE FROM kv WHERE key=?", (key,))

    def get(self, key: str) -> Any:
        r = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else None


def _row(r: tuple) -> OrderRow:
    return OrderRow(r[0], r[1], r[2], None if r[3] is None else Decimal(r[3]), Decimal(r[4]), r[5], r[6],
                    Decimal(r[7]), r[8], r[9], r[10], r[11])
