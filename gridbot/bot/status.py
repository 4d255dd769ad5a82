"""What the bot tells the world: systemd's STATUS= and watchdog, the figures file, health, /api/status.

``heartbeat`` (after every cycle) sends ``STATUS=`` when the line changed (at most once a second) or
the watchdog is due, and lets ``figures.Publisher`` write the figures file when due. ``reasons`` is the
bot's *health* (``health.py``): why it is not trading as configured; a non-empty list makes
``STATUS=`` start with ``DEGRADED:``, ``/healthz`` answer 503 and ``snapshot`` (``/api/status``,
``/metrics``) say ``degraded``. Reads the bot's state; changes nothing but its own bookkeeping.
"""
from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any, Optional

from .. import figures
from .. import strategy as st
from .base import BotBase

log = logging.getLogger("gridbot")

STALL_S = 180.0  # the watchdog keeps being fed while one cycle takes up to this (adapter retries ~75 s at worst)


def _s(x: Optional[Decimal]) -> Optional[str]:
    return None if x is None else str(x)


class StatusMixin(BotBase):
    """STATUS=, the figures file, health reasons and the status snapshot."""

    def heartbeat(self) -> None:
        self.last_loop = time.time()
        now = self._progress = time.monotonic()
        line = self.status_line()
        due = self.notifier.watchdog_interval is not None and now - self._last_ping >= self.notifier.watchdog_interval
        if due or (line != self._last_status and now - self._last_ping >= 1.0):
            self.notifier.status(line, watchdog=self.notifier.watchdog_interval is not None)
            self._last_ping = now
            self._last_status = line
        self.publish()

    def publish(self, force: bool = False) -> None:
        """Figures for `gridbot list`/top/web: a small file, written only when due and changed."""
        if self._figures is None:
            self._figures = figures.Publisher(
                self.name, self.cfg.exchange, figures.figures_dir(), lambda: self.store.get("equity_history"),
                lambda h: self.store.put("equity_history", h), self._recent_fills, log=log.warning)
        self._figures.tick(self.state, self.price, force, self.reasons())

    def _recent_fills(self, n: int) -> list[dict[str, Any]]:
        rows = self.store.db.execute("SELECT side, price, qty, fee, fee_asset, ts_ms FROM fills "
                                     "ORDER BY ts_ms DESC, trade_id DESC LIMIT ?", (n,)).fetchall()
        return [{"side": r[0], "price": r[1], "qty": r[2], "fee": r[3], "fee_asset": r[4], "time": r[5] / 1000}
                for r in rows]

    def reasons(self) -> list[str]:
        """Why the bot is not trading as configured (empty: it is); see gridbot/health.py."""
        now = time.monotonic()
        s = self.state
        h = self.health
        if s is not None:
            miss = st.missing(s)
            h.set("missing", f"{len(miss)} of {len(s.gaps)} levels without an order" if miss else None, now)
            lo, hi = s.p.buy[0], s.p.sell[-1]
            out = (s.phase == st.WAITING or (s.phase == st.RUNNING and self.price is not None
                                              and not lo <= self.price <= hi))
            h.set("range", f"not trading: price {self.price} outside the grid {lo}..{hi}" if out else None, now)
            h.set("stopped", f"grid stopped ({s.note})" if s.phase == st.STOPPED else None, now)
        out_ = h.reasons(now)
        if now - self._progress >= STALL_S:
            out_.insert(0, f"main loop stalled for {now - self._progress:.0f} s")
        return out_

    def kinds(self) -> list[str]:
        """The health conditions behind ``reasons()``, by their stable names (health.KINDS)."""
        now = time.monotonic()
        return (["stalled"] if now - self._progress >= STALL_S else []) + self.health.kinds(now)

    def healthy(self) -> bool:
        return not self.stopping and not self.reasons()

    def status_line(self) -> str:
        reasons = self.reasons()
        if self.state is None:
            return reasons[0] if reasons else "starting"
        line = figures.status_line(self.state, self.price)
        return f"DEGRADED: {'; '.join(reasons)} | {line}" if reasons else line

    def snapshot(self) -> dict[str, Any]:
        s = self.state
        reasons = self.reasons()
        health = {"ok": not reasons and not self.stopping, "reasons": reasons, "kinds": self.kinds()}
        if s is None:
            return {"instance": self.name, "symbol": self.symbol, "exchange": self.cfg.exchange, "phase": "starting",
                    "price": _s(self.price), "healthy": False, "degraded": True, "health": health,
                    "last_loop": round(self.last_loop, 3), "status": self.status_line()}
        total, unpaired = s.pnl(self.price) if self.price is not None else (Decimal(0), Decimal(0))
        bal = {a: {"available": str(b.available), "locked": str(b.locked)} for a, b in self._balances.items()}
        best_buy, best_sell = s.best_prices()
        return {
            "instance": self.name, "symbol": self.symbol, "exchange": self.cfg.exchange, "phase": s.phase,
            "price": None if self.price is None else str(self.price), "open_orders": len(s.by_cid),
            "fills": s.fills, "pairs": s.pairs, "realised_profit": str(s.realised),
            "unpaired_pnl": str(unpaired.quantize(Decimal("0.00000001"))), "total_pnl": str(total),
            "inventory_base": str(s.inventory), "best_buy": _s(best_buy), "best_sell": _s(best_sell),
            "qty_per_level": str(s.p.qty), "levels": len(s.p.buy) - 1, "balances": bal,
            "last_loop": round(self.last_loop, 3), "healthy": health["ok"], "note": s.note, "close": s.closing,
            "degraded": bool(reasons), "health": health, "missing_levels": len(st.missing(s)),
            "held_levels": len(s.held), "auth_halted": self.auth_halted,
            "status": self.status_line(),
        }
