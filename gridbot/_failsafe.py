"""When the state can no longer be written (disk full, read-only), the bot must stop trading.

Every order is written to the store before it is sent, so a failing store already stops new
orders. What is left is the ``on_stop`` promise: with ``cancel``, the orders resting on the venue
are cancelled straight through the exchange (the store cannot record it; the next start
reconciles with the venue), so live orders are never left unattended by a bot that is gone.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .models import OnStop

if TYPE_CHECKING:
    from .bot import Bot

log = logging.getLogger("gridbot")


async def stop_without_store(bot: "Bot") -> str:
    """Apply on_stop without the store; return what was done, for the one log line."""
    if bot.cfg.on_stop is not OnStop.cancel:
        return f"on_stop=keep: {len(bot.state.by_cid) if bot.state else 0} orders left on the book"
    try:
        open_orders = await bot.ex.open_orders(bot.symbol)
    except Exception as exc:  # noqa: BLE001 - whatever the adapter raises, say it in the one line
        return f"on_stop=cancel not applied: cannot list open orders ({type(exc).__name__}: {exc})"
    failed = 0
    for o in open_orders:
        try:
            await bot.ex.cancel(bot.symbol, o.client_id)
        except Exception:  # noqa: BLE001 - cancel what can be cancelled
            failed += 1
    done = len(open_orders) - failed
    return (f"on_stop=cancel: cancelled {done} open orders" if not failed
            else f"on_stop=cancel: cancelled {done} open orders, {failed} could not be cancelled")
