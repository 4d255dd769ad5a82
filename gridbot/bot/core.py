"""``Bot``: the parts of the bot joined into one object (why mixins: the package docstring).

The state they share is ``base.BotBase``'s; each part adds the methods of its one job. The order of
the bases only documents the layers (the loop on top, the failure bookkeeping at the bottom): no two
parts define the same method.
"""
from __future__ import annotations

from .failures import FailuresMixin
from .loop import LoopMixin
from .orders import OrdersMixin
from .persist import PersistMixin
from .reconcile import ReconcileMixin
from .reload import ReloadMixin
from .startup import StartupMixin
from .status import StatusMixin


class Bot(LoopMixin, StartupMixin, ReconcileMixin, OrdersMixin, PersistMixin, ReloadMixin, StatusMixin,
          FailuresMixin):
    """One instance's event loop: exchange <-> strategy, with the store as the write-ahead log."""
