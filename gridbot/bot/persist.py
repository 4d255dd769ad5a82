"""Write-ahead persistence: every strategy step goes through ``apply``, in one store transaction.

The crash-safety guarantee of the whole bot lives here: an intent (an order to place) is written to
the store as a pending row *before* any exchange call can send it, and the strategy snapshot is
written in the same transaction, so a crash at any point leaves either nothing or a pending row the
next start sends with the same client id (never twice). Fills are booked here too, idempotently by
trade id, and only if they belong to an order row we wrote (see ``OrderRow.owns``).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from .. import strategy as st
from ..store import CANCELLED, FILLED, OPEN
from .base import BotBase

if TYPE_CHECKING:
    from ..exchange.base import Fill

log = logging.getLogger("gridbot")

def note_level(s: st.GridState) -> int:
    """The log level of a new strategy note: WARNING for a stopped grid or a warning notice (a level
    dropped or held, an order refused or cancelled outside the bot, a close given up), else INFO."""
    bad = s.phase is st.STOPPED or (s.notice is not None and s.notice.level is st.Level.warning)
    return logging.WARNING if bad else logging.INFO


class PersistMixin(BotBase):
    """``apply`` (events -> strategy -> store) and the snapshot; the rest of the bot calls only ``apply``."""

    def apply(self, events: list[st.Event], fills: Optional[list["Fill"]] = None) -> list[st.Intent]:
        """Feed events (and new fills) to the strategy and persist the result atomically."""
        assert self.state is not None
        if st.needs_epoch(self.state):
            self._renew_epoch()
        if not fills and len(events) == 1 and events[0].__class__ is st.Tick:  # the per-tick path: no I/O
            note = self.state.note
            self.state, intents = st.step(self.state, events[0])
            if not intents and self.state.note == note:
                return []
            with self.store.tx():  # rare: the tick started, triggered or retried something
                self._record(intents, note)
            return intents
        out: list[st.Intent] = []
        changed = False
        with self.store.tx():
            for f in fills or ():
                row = self.store.order(f.client_id)
                if row is None or not row.owns(f.symbol, f.order_id):
                    log.debug("fill %s (order %s %s) is not an order of ours; ignored", f.trade_id, f.client_id,
                              f.order_id)
                    continue  # another bot on the account, or a client id reused by another state
                if not self.store.add_fill(f):
                    continue  # already recorded
                filled = row.filled + f.qty
                status = FILLED if filled >= row.qty else row.status if row.status == CANCELLED else OPEN
                self.store.set_status(f.client_id, status, filled)
                events.append(st.Filled(f.client_id, f.qty, f.price, f.fee, f.fee_asset, f.trade_id))
                log.info("fill %s %s %s @ %s (order %s, fee %s %s)", f.trade_id, f.side.value, f.qty, f.price,
                         f.client_id, f.fee, f.fee_asset)
            for ev in events:
                if st.needs_epoch(self.state):
                    self._renew_epoch()
                note = self.state.note
                self.state, intents = st.step(self.state, ev)
                out.extend(intents)
                changed = changed or not isinstance(ev, st.Tick) or bool(intents) or self.state.note != note
                self._record(intents, note, snapshot=False)
            if changed:
                self._snapshot()
        return out

    def _renew_epoch(self) -> None:
        """Legacy state, or the counter nearly used up: number the next orders in a fresh epoch."""
        assert self.state is not None
        old = self.state.epoch
        epoch = self.new_epoch()
        if epoch == old:
            log.warning("the epoch source gave the running epoch %d again: client ids may repeat", epoch)
        self.state, _ = st.step(self.state, st.NewEpoch(epoch))
        log.info("client ids: epoch %d (was %d)", epoch, old)

    def _record(self, intents: list[st.Intent], old_note: str, snapshot: bool = True) -> None:
        """Inside a transaction: log a new note, write intents (before any exchange call), snapshot."""
        s = self.state
        assert s is not None
        if s.note != old_note:
            log.log(note_level(s), "%s", s.note)
        for it in intents:
            if isinstance(it, st.Place):
                self.store.add_intent(it.client_id, "limit", it.side.value, it.price, it.qty, it.gap,
                                      exchange=self.cfg.exchange, symbol=self.symbol)
            elif isinstance(it, st.Market):
                self.store.add_intent(it.client_id, "market", it.side.value, None, it.qty,
                                      exchange=self.cfg.exchange, symbol=self.symbol)
        if snapshot:
            self._snapshot()

    def _snapshot(self) -> None:
        s = self.state
        assert s is not None
        self.store.put("strategy", s.to_dict())
        self.store.put("profit", {"realised": str(s.realised), "pairs": s.pairs, "fills": s.fills,
                                  "inventory_base": str(s.inventory), "base_delta": str(s.base_delta),
                                  "quote_delta": str(s.quote_delta), "fees_base": str(s.fees_base),
                                  "fees_quote": str(s.fees_quote), "phase": s.phase, "open_orders": len(s.by_cid),
                                  "close": s.closing})
