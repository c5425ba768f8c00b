"""The customer's tracking page by signed link (orders/tracking_page.py), as HTML and as JSON, and the link itself
for support staff.

A wrong or missing signature is a 404, the same as an order that does not exist: the page never tells a
stranger which order numbers are real.
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, Response, current_app, render_template
from pydantic import Field

from ...errors import OrderNotFound
from ...orders.queries import get_order
from ...orders.tracking_page import TrackingSecret, customer_view, link
from ..auth import READ, requires
from ..errors import ApiError, json_response
from ..openapi import operation, query
from ..requests import oms
from ..schemas import Answer, Query

bp = Blueprint("tracking", __name__, template_folder="../templates")
TAGS = ["tracking"]


class TrackQuery(Query):
    sig: Annotated[str, Field(max_length=64, description="the link's signature")] = ""


class TrackingLink(Answer):
    number: str
    url: str


class CustomerView(Answer):
    number: str
    status: str
    parcels: list[dict[str, object]]
    steps: list[dict[str, object]]


def _secret() -> TrackingSecret:
    # One per app: the key is read (or made) once.
    secret = current_app.extensions.get("oms_tracking_secret")
    if secret is None:
        secret = TrackingSecret(oms().db, oms().config.tracking_secret_env)
        current_app.extensions["oms_tracking_secret"] = secret
    assert isinstance(secret, TrackingSecret)
    return secret


def _view(number: str) -> dict[str, object]:
    q = query(TrackQuery)
    if not q.sig or not _secret().verify(number, q.sig):
        raise ApiError(404, "no such order, or the link is not whole: open the link exactly as it was sent")
    try:
        with oms().db.read() as s:
            return customer_view(s, number)
    except OrderNotFound:
        raise ApiError(404, "no such order, or the link is not whole: open the link exactly as it was sent") from None


def _private(resp: Response) -> Response:
    # The link is the key: no referrer leaks it, no shared cache keeps the page.
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Robots-Tag"] = "noindex"
    return resp


@bp.get("/track/<number>")
@operation(query=TrackQuery, answers={200: None}, tags=TAGS, public=True, refusals=(404,))
def page(number: str) -> Response:
    """The customer's tracking page (HTML)."""
    resp = Response(render_template("track.html", view=_view(number)), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return _private(resp)


@bp.get("/api/track/<number>")
@operation(query=TrackQuery, answers={200: CustomerView}, tags=TAGS, public=True, refusals=(404,))
def page_json(number: str) -> Response:
    """The customer's tracking page as JSON."""
    return _private(json_response(_view(number)))


@bp.get("/api/orders/<number>/tracking-link")
@requires(READ)
@operation(answers={200: TrackingLink}, tags=["orders"], refusals=(404,))
def tracking_link(number: str) -> Response:
    """The signed link to an order's tracking page, to send to its customer."""
    with oms().db.read() as s:
        get_order(s, number)
    return json_response({"number": number, "url": link(_secret(), number, oms().config.public_url)})
