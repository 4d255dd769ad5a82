"""Keep secrets out of core dumps: a process that holds API keys must not leave them on disk.

``LimitCORE=0`` in the unit covers the service; this covers the process itself wherever it runs
(``gridbot credentials set``, a live bot started by hand): RLIMIT_CORE 0, and PR_SET_DUMPABLE 0,
which the kernel honours even when core_pattern pipes to systemd-coredump or apport.
"""
from __future__ import annotations

import resource

PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def dumpable() -> bool:
    """Whether this process may dump core (for tests)."""
    import ctypes

    PR_GET_DUMPABLE = 3
    return bool(ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) or resource.getrlimit(resource.RLIMIT_CORE)[0] != 0
