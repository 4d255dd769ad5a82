"""The matching engine behind ``fake_backpack.py``: one Backpack account, several spot markets.

Written for the fake only, in Backpack's own vocabulary (``Bid``/``Ask``, ``New``/``Expired``…,
``expiryReason``), and independent of ``gridbot`` so that the fake cannot mirror the adapter.
Every rule here names its source; "OpenAPI" is Backpack's OpenAPI document (as stored in
api-evangelist/backpack, ``openapi/_original/backpack-exchange-openapi.yml``), "bpx" is
Backpack's own client backpack-exchange/bpx-api-client (``types/src/*.rs``), "ccxt" is
``python/ccxt/backpack.py``.

* One account, one set of balances (``available``/``locked`` per asset; OpenAPI ``/api/v1/capital``:
  "Locked assets are those that are currently in an open order"), shared by every market: two
  bots on SOL_USDC and SOL_USDT draw on the same SOL.
* Orders are keyed by the venue's ``id``. ``clientId`` is an optional u32 label (OpenAPI
  ``OrderExecutePayload.clientId``); nothing documents a refusal of a reused one, so a reused
  clientId is accepted and a look-up by clientId answers the newest order carrying it.
* A limit order priced outside ``[minMultiplier, maxMultiplier] × last price`` is refused with 400
  ``INVALID_PRICE`` "Price is too far from the last active price" (OpenAPI ``PriceFilter``:
  "Minimum/Maximum allowed multiplier from last active price"; the code and message as ccxt
  records the venue's answer). Tick, step and minimum quantity: ``INVALID_PRICE`` /
  ``INVALID_QUANTITY`` (OpenAPI ``ApiErrorCode``).
* A post-only order that would take is not refused: it is answered 200 with ``status: Expired``
  (OpenAPI ``OrderStatus``), locks nothing, and shows ``expiryReason: PostOnlyTaker`` in order
  history (OpenAPI ``Order.expiryReason`` / ``OrderExpiryReason``; the placement answer, OpenAPI
  ``LimitOrder`` and bpx ``LimitOrder``, has no expiry-reason field).
* A market order takes at the last price, up to the market's ``liquidity`` (unlimited by
  default); what cannot be filled expires (``Expired``, ``InsufficientLiquidity``).
* Fills carry ``tradeId`` (OpenAPI ``OrderFill.tradeId``: int64, optional; bpx ``Fill.trade_id:
  Option<i64>``). System fills (``system_fill``) have a null ``tradeId``, no ``clientId`` and a
  ``systemOrderType`` (OpenAPI ``SystemOrderType``); only ``fillType=User`` leaves them out
  (OpenAPI ``FillType``).
* A fill may be hidden (``hide_fills``): it keeps its true timestamp but appears in the history
  only once revealed: the late fill a venue can show.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

D = Decimal
BID, ASK = "Bid", "Ask"
TERMINAL = ("Filled", "Cancelled", "Expired")


class VenueError(Exception):
    """A documented error answer: ``status`` and an ``ApiErrorResponse`` ``{code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class MarketSpec:
    symbol: str
    base: str
    quote: str
    tick: Decimal = D("0.01")
    step: Decimal = D("0.01")
    min_qty: Decimal = D("0.01")
    min_mult: Optional[Decimal] = D("0.75")  # SOL_USDC's band as ccxt records it (0.75 / 1.25)
    max_mult: Optional[Decimal] = D("1.25")
    state: str = "Open"  # OpenAPI OrderBookState: Open, Closed, CancelOnly, LimitOnly, PostOnly
    liquidity: Optional[Decimal] = None  # base a market order can take; None = unlimited


@dataclass
class VOrder:
    id: str
    client_id: Optional[int]
    symbol: str
    side: str
    order_type: str
    price: Optional[Decimal]
    qty: Decimal
    post_only: bool
    created_ms: int
    time_in_force: str = "GTC"
    executed: Decimal = D(0)
    executed_quote: Decimal = D(0)
    status: str = "New"
    expiry_reason: Optional[str] = None
    locked: Decimal = D(0)  # what this order still holds of the paying asset


@dataclass
class VFill:
    seq: int
    trade_id: Optional[int]
    order_id: str
    client_id: Optional[int]
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_symbol: str
    is_maker: bool
    ts_ms: int
    fill_type: str = "User"
    system_order_type: Optional[str] = None
    hidden: bool = False


@dataclass
class Account:
    markets: dict[str, MarketSpec]
    prices: dict[str, Decimal]
    available: dict[str, Decimal]
    locked: dict[str, Decimal] = field(default_factory=dict)
    maker_fee: Decimal = D("0.0008")
    taker_fee: Decimal = D("0.001")
    orders: dict[str, VOrder] = field(default_factory=dict)  # every order ever, in placement order
    fills: list[VFill] = field(default_factory=list)
    hide_fills: bool = False
    clock: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)
    _ids: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        start = 1 + max([int(i) for i in self.orders] + [len(self.fills) + 100_000])
        self._ids = itertools.count(start)
        for asset in list(self.available) + [a for m in self.markets.values() for a in (m.base, m.quote)]:
            self.available.setdefault(asset, D(0))
            self.locked.setdefault(asset, D(0))

    # --- helpers -----------------------------------------------------------------------------

    def spec(self, symbol: Any) -> MarketSpec:
        m = self.markets.get(str(symbol))
        if m is None:
            raise VenueError(400, "INVALID_SYMBOL", f"Invalid market symbol {symbol}")
        return m

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _lock(self, asset: str, amount: Decimal) -> None:
        if self.available[asset] < amount:
            raise VenueError(400, "INSUFFICIENT_FUNDS", "Insufficient funds")
        self.available[asset] -= amount
        self.locked[asset] += amount

    def _release(self, o: VOrder) -> None:
        asset = self.markets[o.symbol].quote if o.side == BID else self.markets[o.symbol].base
        self.locked[asset] -= o.locked
        self.available[asset] += o.locked
        o.locked = D(0)

    def _fill(self, o: VOrder, price: Decimal, qty: Decimal, maker: bool) -> VFill:
        """Settle one execution. Fees come out of what is received (buy: base, sell: quote)."""
        m = self.markets[o.symbol]
        rate = self.maker_fee if maker else self.taker_fee
        notional = price * qty
        if o.side == BID:
            if o.locked:
                held = min(o.locked, (o.price or price) * qty)
                o.locked -= held
                self.locked[m.quote] -= held
                self.available[m.quote] += held - notional  # price improvement comes back
            else:
                self.available[m.quote] -= notional
            fee, fee_symbol = qty * rate, m.base
            self.available[m.base] += qty - fee
        else:
            if o.locked:
                o.locked -= qty
                self.locked[m.base] -= qty
            else:
                self.available[m.base] -= qty
            fee, fee_symbol = notional * rate, m.quote
            self.available[m.quote] += notional - fee
        o.executed += qty
        o.executed_quote += notional
        o.status = "Filled" if o.executed >= o.qty else "PartiallyFilled"
        seq = len(self.fills) + 1
        f = VFill(seq, 1_000_000 + seq, o.id, o.client_id, o.symbol, o.side, price, qty, fee, fee_symbol,
                  maker, self.clock(), hidden=self.hide_fills)
        self.fills.append(f)
        return f

    # --- the API -------------------------------------------------------------------------------

    def place(self, symbol: str, side: str, order_type: str, qty: Decimal, price: Optional[Decimal],
              client_id: Optional[int], post_only: bool, time_in_force: str = "GTC") -> VOrder:
        m = self.spec(symbol)
        if m.state in ("Closed", "CancelOnly"):
            raise VenueError(400, "INVALID_ORDER", f"Order book is {m.state}")
        if qty <= 0 or qty % m.step or qty < m.min_qty:
            raise VenueError(400, "INVALID_QUANTITY", f"Quantity must be a multiple of {m.step} and at least {m.min_qty}")
        last = self.prices[m.symbol]
        o = VOrder(self._next_id(), client_id, m.symbol, side, order_type, price, qty, post_only, self.clock(),
                   time_in_force)
        if order_type == "Limit":
            assert price is not None
            if price <= 0 or price % m.tick:
                raise VenueError(400, "INVALID_PRICE", f"Price must be a multiple of the tick size {m.tick}")
            if (m.min_mult is not None and price < last * m.min_mult) or (
                    m.max_mult is not None and price > last * m.max_mult):
                raise VenueError(400, "INVALID_PRICE", "Price is too far from the last active price")
            crosses = price >= last if side == BID else price <= last
            if crosses and post_only:
                o.status, o.expiry_reason = "Expired", "PostOnlyTaker"
                self.orders[o.id] = o
                return o
            need = price * qty if side == BID else qty
            self._lock(m.quote if side == BID else m.base, need)
            o.locked = need
            self.orders[o.id] = o
            if crosses:  # a marketable limit takes at the last price (this fake keeps no other book)
                self._fill(o, last, qty, maker=False)
                self._release(o)
            return o
        if m.state in ("LimitOnly", "PostOnly"):
            raise VenueError(400, "INVALID_ORDER", f"Order book is {m.state}")
        take = qty if m.liquidity is None else min(qty, m.liquidity)
        have = self.available[m.quote] if side == BID else self.available[m.base]
        if (last * qty if side == BID else qty) > have:
            raise VenueError(400, "INSUFFICIENT_FUNDS", "Insufficient funds")
        self.orders[o.id] = o
        if take > 0:
            self._fill(o, last, take, maker=False)
        if o.executed < qty:
            o.status, o.expiry_reason = "Expired", "InsufficientLiquidity"
        return o

    def cancel(self, o: VOrder) -> VOrder:
        self._release(o)
        o.status = "Cancelled"
        return o

    def open_orders(self, symbol: Optional[str] = None) -> list[VOrder]:
        return [o for o in self.orders.values()
                if o.status in ("New", "PartiallyFilled") and (symbol is None or o.symbol == symbol)]

    def find(self, symbol: str, client_id: Optional[int] = None, order_id: Optional[str] = None,
             open_only: bool = True) -> Optional[VOrder]:
        pool = self.open_orders(symbol) if open_only else [o for o in self.orders.values() if o.symbol == symbol]
        for o in reversed(pool):  # the newest order carrying a reused clientId
            if (order_id is not None and o.id == order_id) or (order_id is None and o.client_id == client_id):
                return o
        return None

    def set_price(self, symbol: str, price: Decimal) -> list[VFill]:
        """The market trades at ``price``: resting orders it reaches fill at their limit (maker)."""
        self.spec(symbol)
        self.prices[symbol] = price
        out = []
        for o in self.open_orders(symbol):
            assert o.price is not None
            if (o.side == BID and price <= o.price) or (o.side == ASK and price >= o.price):
                out.append(self._fill(o, o.price, o.qty - o.executed, maker=True))
                self._release(o)
        return out

    def system_fill(self, symbol: str, side: str, qty: Decimal, price: Optional[Decimal] = None,
                    kind: str = "CollateralConversion") -> VFill:
        """A fill the venue made on its own (liquidation, conversion): null tradeId, no clientId."""
        m = self.spec(symbol)
        o = VOrder(self._next_id(), None, m.symbol, side, "Market", None, qty, False, self.clock())
        self.orders[o.id] = o
        f = self._fill(o, price if price is not None else self.prices[m.symbol], qty, maker=False)
        f.trade_id, f.fill_type, f.system_order_type = None, "CollateralConversion", kind
        return f

    def reveal(self) -> int:
        n = sum(1 for f in self.fills if f.hidden)
        for f in self.fills:
            f.hidden = False
        return n

    # --- persistence (standalone fake) ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def enc(d: dict[str, Any]) -> dict[str, Any]:
            return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in d.items()}
        return {"markets": [enc(asdict(m)) for m in self.markets.values()],
                "prices": {k: str(v) for k, v in self.prices.items()},
                "available": {k: str(v) for k, v in self.available.items()},
                "locked": {k: str(v) for k, v in self.locked.items()},
                "maker_fee": str(self.maker_fee), "taker_fee": str(self.taker_fee),
                "orders": [enc(asdict(o)) for o in self.orders.values()],
                "fills": [enc(asdict(f)) for f in self.fills], "hide_fills": self.hide_fills}

    @classmethod
    def from_dict(cls, d: dict[str, Any], clock: Callable[[], int]) -> "Account":
        def dec(cls_: Any, row: dict[str, Any]) -> Any:
            names = {f.name: f for f in cls_.__dataclass_fields__.values()}
            return cls_(**{k: (D(v) if isinstance(v, str) and "Decimal" in str(names[k].type) else v)
                           for k, v in row.items() if k in names})
        markets = {m["symbol"]: dec(MarketSpec, m) for m in d["markets"]}
        orders = {o["id"]: dec(VOrder, o) for o in d["orders"]}
        return cls(markets, {k: D(v) for k, v in d["prices"].items()},
                   {k: D(v) for k, v in d["available"].items()}, {k: D(v) for k, v in d["locked"].items()},
                   D(d["maker_fee"]), D(d["taker_fee"]), orders, [dec(VFill, f) for f in d["fills"]],
                   bool(d.get("hide_fills")), clock)
