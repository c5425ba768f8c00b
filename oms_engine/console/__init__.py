"""The web console: the admin API's work for people, in a browser, at ``/console``.

Sign in with an API token; the holds queue with the rule behind each hold,
release and reject; order search and an order's timeline; stock by warehouse;
rule versions with candidate checks, dry-runs, activation and rollback; dead
letters; a dashboard of the metrics. Server-rendered pages, one style sheet,
no script, nothing fetched from elsewhere (docs/console.md).

:func:`install` mounts it on the app :func:`oms_engine.web.app.create_app` made.
"""

from __future__ import annotations

from flask import Flask, Response, redirect

from . import access
from .views import bp

__all__ = ["bp", "install"]


def _to_console() -> Response:
    return redirect("/console/", 302)


def install(app: Flask) -> None:
    """Mount the console on ``app`` (an admin API app: it needs its ``oms`` and its tokens), and send ``/`` to it.

    Mounting it twice changes nothing.
    """
    if bp.name in app.blueprints:
        return
    access.configure(app)
    app.register_blueprint(bp)
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "console_root", _to_console, methods=["GET"])
