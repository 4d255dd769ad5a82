"""The commands, registered in the order ``gridbot --help`` lists them. Each is a few lines in its
group module (parse, call ``fleet``, print); no systemd or validation logic lives in the CLI.

- ``_app``        the Typer app, ``--user``/``--version``, the fleet context object, shared options
- ``_lifecycle``  start, stop, restart, stop-all, reload, enable, disable, cleanup, run
- ``_configure``  rm, reset, credentials set/rm, edit, schema
- ``_views``      list, top, web (``_render`` draws the tables, ``_top`` the screen)
- ``_inspect``    status, stats, info, validate, logs
"""
from __future__ import annotations

from . import _configure, _inspect, _lifecycle, _views
from ._app import app, credentials_app
from ._lifecycle import _Progress  # noqa: F401  (tests)
from ._views import LIST_DROP, LIST_HEADERS, _figures_only, list_cells, list_lines, list_styles  # noqa: F401

for _name, _fn, _hidden in (
        ("start", _lifecycle.start, False), ("stop", _lifecycle.stop, False), ("restart", _lifecycle.restart, False),
        ("stop-all", _lifecycle.stop_all, True), ("reload", _lifecycle.reload, False), ("rm", _configure.rm, False),
        ("enable", _lifecycle.enable, False), ("disable", _lifecycle.disable, False),
        ("cleanup", _lifecycle.cleanup, False), ("reset", _configure.reset, False), ("list", _views.list_, False),
        ("top", _views.top, False), ("web", _views.web, False), ("status", _inspect.status, False),
        ("stats", _inspect.stats, False), ("info", _inspect.info, False), ("validate", _inspect.validate, False),
        ("logs", _inspect.logs, False), ("run", _lifecycle.run, False), ("edit", _configure.edit, False),
        ("schema", _configure.schema, False)):
    app.command(_name, hidden=_hidden)(_fn)
credentials_app.command("set")(_configure.credentials_set)
credentials_app.command("rm")(_configure.credentials_rm)

__all__ = ["app"]
