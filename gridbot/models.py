"""Config models: what one instance's JSON file may say. Pure values, no I/O.

Money is ``Decimal`` (never float); NaN and Infinity are refused; unknown keys are errors so a
typo (``uper_price``) cannot silently fall back to a default with real money.
"""
from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Where packaging/install.sh writes `gridbot schema`: the examples' "$schema" resolves on the host itself.
SCHEMA_PATH = "/usr/local/share/gridbot/config.schema.json"
SCHEMA_URL = f"file://{SCHEMA_PATH}"

PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[Decimal, Field(ge=0, lt=Decimal("0.1"), allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Spacing(str, Enum):
    arithmetic = "arithmetic"
    geometric = "geometric"


class OnStop(str, Enum):
    """What to do with resting orders when the service stops."""

    cancel = "cancel"
    keep = "keep"


class OnTrigger(str, Enum):
    """What to do with the position when stop-loss or take-profit fires."""

    cancel = "cancel"  # cancel the grid, keep the base
    sell = "sell"  # cancel the grid and sell the grid's own base at market (never the account's other coins)


class PriceModel(_Strict):
    """Seeded random walk with jumps: crypto-like volatility, reproducible from the seed."""

    start_price: PositiveDecimal = Decimal("150")
    volatility: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.0008
    jump_probability: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.002
    jump_size: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.01
    interval_s: Annotated[float, Field(ge=0.01, le=3600, allow_inf_nan=False)] = 1.0
    csv: Optional[str] = Field(default=None, description="replay prices from this CSV (one price per line) instead")


class PaperConfig(_Strict):
    """The built-in simulated venue: balances, fees, market rules and the price stream."""

    initial_base: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal("0")
    initial_quote: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal("10000")
    taker_fee: Fraction = Decimal("0.001")
    tick_size: PositiveDecimal = Decimal("0.01")
    step_size: PositiveDecimal = Decimal("0.01")
    min_qty: PositiveDecimal = Decimal("0.01")
    seed: int = 1
    liquidity_per_tick: Optional[PositiveDecimal] = Field(
        default=None, description="most base quantity that trades at one price tick (partial fills); none = unlimited")
    price: PriceModel = PriceModel()


class BackpackConfig(_Strict):
    """Live venue settings. Keys are NOT here: they arrive as systemd credentials."""

    base_url: str = Field(default="https://api.backpack.exchange", pattern=r"^https?://[^\s]+$")
    window_ms: Annotated[int, Field(ge=1000, le=60000)] = 5000
    post_only: bool = True
    account: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                         description="label of the API key's subaccount; two instances may not trade one symbol on one account")
    poll_interval_s: Annotated[float, Field(ge=0.2, le=300, allow_inf_nan=False)] = 2.0

    @field_validator("base_url")
    @classmethod
    def _https_unless_loopback(cls, v: str) -> str:
        """Signed requests over plain http could be read or replayed on the way: https, except to
        this host itself (a local test venue or proxy)."""
        from urllib.parse import urlsplit

        try:
            u = urlsplit(v)
            host, _port = u.hostname or "", u.port
        except ValueError:
            raise ValueError("not a valid URL") from None
        if not host or u.username or u.password:
            raise ValueError("must be scheme://host[:port][/path], without user or password")
        if u.scheme == "https":
            return v
        if host in ("localhost", "::1") or host.startswith("127."):
            import ipaddress

            try:
                if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                    return v
            except ValueError:
                pass
        raise ValueError("must be https:// (plain http only to loopback: 127.0.0.1, ::1, localhost)")


# the config fields that make the bot re-grid on start; anything else SIGHUP may apply
# (runner and the CLI's restart preview share this one list)
GRID_FIELDS = ("exchange", "symbol", "lower_price", "upper_price", "levels", "spacing", "qty_per_level",
               "investment", "fee_rate", "base_investment")


class GridConfig(_Strict):
    """One grid bot instance. File stem = instance name."""

    schema_ref: Optional[str] = Field(default=None, alias="$schema")
    exchange: Literal["paper", "backpack"] = "paper"
    symbol: str = Field(pattern=r"^[A-Z0-9]{1,20}_[A-Z0-9]{1,20}$", description="BASE_QUOTE, e.g. SOL_USDC")
    lower_price: PositiveDecimal
    upper_price: PositiveDecimal
    levels: Annotated[int, Field(ge=2, le=500, description="number of grid intervals; price lines = levels + 1")]
    spacing: Spacing = Spacing.arithmetic
    qty_per_level: Optional[PositiveDecimal] = Field(default=None, description="order size in base per level")
    investment: Optional[PositiveDecimal] = Field(default=None, description="total quote to commit; sizes each level")
    base_investment: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Field(
        default=Decimal(0), description="base the grid may take from coins already held, to seed its sells; "
        "nothing else on the account is the grid's (0: it buys what its sells need)")
    fee_rate: Fraction = Field(default=Decimal("0.0008"), description="maker fee the grid's orders pay")
    stop_loss: Optional[PositiveDecimal] = None
    take_profit: Optional[PositiveDecimal] = None
    on_trigger: OnTrigger = OnTrigger.cancel
    on_stop: OnStop = OnStop.cancel
    web_port: Optional[Annotated[int, Field(ge=1024, le=65535)]] = None
    web_balances: bool = Field(default=False, description="also show venue balances on the status port "
                                                          "(any local user can read it)")
    reconcile_interval_s: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = Field(
        default=30.0, description="compare the bot's orders and fills with the venue's this often (seconds): "
        "orders cancelled or filled behind its back, late fills; live: two requests each time")
    paper: PaperConfig = PaperConfig()
    backpack: BackpackConfig = BackpackConfig()

    @property
    def base_asset(self) -> str:
        return self.symbol.split("_", 1)[0]

    @property
    def quote_asset(self) -> str:
        return self.symbol.split("_", 1)[1]

    @model_validator(mode="after")
    def _check_grid(self) -> "GridConfig":
        if self.lower_price >= self.upper_price:
            raise ValueError(f"lower_price ({self.lower_price}) must be below upper_price ({self.upper_price})")
        if (self.qty_per_level is None) == (self.investment is None):
            raise ValueError("give exactly one of qty_per_level (base per level) or investment (total quote)")
        if self.stop_loss is not None and self.stop_loss >= self.lower_price:
            raise ValueError(f"stop_loss ({self.stop_loss}) must be below lower_price ({self.lower_price})")
        if self.take_profit is not None and self.take_profit <= self.upper_price:
            raise ValueError(f"take_profit ({self.take_profit}) must be above upper_price ({self.upper_price})")
        worst = self.worst_step_ratio()
        breakeven = 2 * self.fee_rate / (1 - self.fee_rate)
        if worst <= breakeven:
            raise ValueError(
                f"grid step {worst:.4%} is not above the round-trip fee {breakeven:.4%}: every matched "
                f"pair would lose money; widen the range or use fewer levels"
            )
        return self

    def worst_step_ratio(self) -> Decimal:
        """Smallest (next/this - 1) between adjacent price lines: where a round trip earns least."""
        n = Decimal(self.levels)
        if self.spacing is Spacing.geometric:
            ratio = (self.upper_price / self.lower_price) ** (Decimal(1) / n)
            return ratio - 1
        step = (self.upper_price - self.lower_price) / n
        return step / (self.upper_price - step)


def grid_fingerprint(cfg: GridConfig) -> dict[str, Any]:
    """The fields that make the grid; base_investment only when set, so states saved before that field
    existed still match (an upgrade must not re-grid every bot)."""
    fp = {k: v for k, v in cfg.model_dump(mode="json").items() if k in GRID_FIELDS}
    if not cfg.base_investment:
        fp.pop("base_investment", None)
    return fp
