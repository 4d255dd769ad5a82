"""SIGHUP: apply the config's soft fields now; grid changes wait for a restart.

Soft fields (thresholds, what to do on a trigger and on stop, the reconcile cadence) change no order
and apply at once; anything else changes the grid itself, which only a restart does (it re-grids on
start, after ``gridbot restart`` showed what will happen). Thresholds are checked against the grid
that is *running*, not the new config's range. A config that does not load keeps the running one.
"""
from __future__ import annotations

import logging

from ..config import load
from ..errors import ConfigError, UsageError
from .base import BotBase
from .params import limits, thresholds_fit

log = logging.getLogger("gridbot")

# fields that change the grid itself; anything else may be applied by SIGHUP
SOFT_FIELDS = ("stop_loss", "take_profit", "on_trigger", "on_stop", "reconcile_interval_s", "schema_ref")


class ReloadMixin(BotBase):
    """``reload``. Uses ``apply`` (persist)."""

    def reload(self) -> None:
        """SIGHUP: thresholds and on_stop apply now; grid changes need a restart (they re-grid on start)."""
        try:
            new = load(self.name, self.cfg_dir)
        except (ConfigError, UsageError) as exc:
            log.warning("reload: keeping the running config: %s", exc)
            return
        old_d, new_d = self.cfg.model_dump(mode="json"), new.model_dump(mode="json")
        hard = sorted(k for k in new_d if k not in SOFT_FIELDS and new_d[k] != old_d[k])
        if hard:
            log.warning("reload: %s changed; restart the instance to apply (it re-grids on start); "
                        "applying only stop_loss/take_profit/on_trigger/on_stop", ", ".join(hard))
        soft = [k for k in SOFT_FIELDS if k != "schema_ref"]
        why = thresholds_fit(self.state.p, new.stop_loss, new.take_profit) if self.state is not None else []
        if why:
            soft = [k for k in soft if k not in ("stop_loss", "take_profit", "on_trigger")]
            log.warning("reload: keeping stop_loss=%s take_profit=%s on_trigger=%s: %s", self.cfg.stop_loss,
                        self.cfg.take_profit, self.cfg.on_trigger.value, "; ".join(why))
        self.cfg = self.cfg.model_copy(update={k: getattr(new, k) for k in soft})
        self.apply([limits(self.cfg)])
        log.info("reload: applied (stop_loss=%s take_profit=%s on_trigger=%s on_stop=%s)", self.cfg.stop_loss,
                 self.cfg.take_profit, self.cfg.on_trigger.value, self.cfg.on_stop.value)
