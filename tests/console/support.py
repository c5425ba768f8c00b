"""The console as a browser without JavaScript sees it: Flask's test client, forms read from the pages served."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from oms_engine.console import install
from oms_engine.engine import OMS
from oms_engine.web.app import create_app
from tests.support.web import TOKENS

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_app(oms: OMS) -> Flask:
    """The admin API with the console mounted, as ``oms serve`` serves it."""
    app = create_app(oms, tokens=TOKENS, warn_without_tokens=False)
    install(app)
    return app


class Console:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, **kw)

    def csrf(self, path: str = "/console/login") -> str:
        """The CSRF token of the forms on ``path``, as the page gives it."""
        page = self.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no form with a CSRF token on {path} ({page.status_code})"
        return unescape(found.group(1))

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool | str = True,
             **kw: Any) -> TestResponse:
        fields = dict(data or {})
        if csrf is True:
            fields["csrf"] = self.csrf("/console/" if not path.startswith("/console/login") else "/console/login")
        elif csrf:
            fields["csrf"] = csrf
        return self.client.post(path, data=fields, **kw)

    def sign_in(self, token: str) -> TestResponse:
        reply = self.post("/console/login", {"token": token})
        assert reply.status_code == 303, reply.text[:500]
        return reply

    def cookie(self) -> str | None:
        found = self.client.get_cookie("oms_console", path="/console")
        return found.value if found is not None else None


def text_of(html: str) -> str:
    """A page's text, tags dropped and whitespace collapsed: what a person reads."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
