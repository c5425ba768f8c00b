"""The customer's tracking page: by signed link only, customer-visible statuses only, personal data masked."""

from __future__ import annotations

from pathlib import Path

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from tests.support.cli import Cli
from tests.support.web import SUPPORT, ApiServer, dispatched_order, held_order


def _link(api: ApiServer, number: str) -> str:
    r = api.get(f"/api/orders/{number}/tracking-link", token=SUPPORT)
    assert r.status == 200 and r.json["number"] == number
    return str(r.json["url"])


def test_the_signed_link_shows_the_order_in_the_customers_words(oms: OMS, api_any: ApiServer) -> None:
    number = dispatched_order(oms, "TRK-1")
    url = _link(api_any, number)
    assert url.startswith(f"/track/{number}?sig=")
    page = api_any.get(url)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    html = page.body.decode()
    assert number in html and "Being prepared" in html
    as_json = api_any.get(url.replace("/track/", "/api/track/"))
    assert as_json.status == 200
    view = as_json.json
    assert view["number"] == number and view["status"] == "Being prepared"
    assert [s["status"] for s in view["steps"]] == ["Awaiting payment", "Order received", "Being prepared"]
    # Nothing internal: no warehouse, amounts, states or reasons.
    text = as_json.body.decode()
    for internal in ("dispatched", "payable", "warehouse", "WH-", "hold_reason"):
        assert internal not in text, internal


def test_a_held_order_does_not_tell_why_and_personal_data_is_masked(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms, "TRK-HELD")
    view = api_any.get(_link(api_any, number).replace("/track/", "/api/track/")).json
    assert view["status"] == "Being prepared"
    text = str(view)
    assert "blacklist" not in text and "on_hold" not in text
    with oms.db.read() as s:
        ship_to = get_order(s, number).ship_to
    assert view["ship_to"]["city"] == ship_to["city"]
    for whole in (ship_to["name"], ship_to["phone"], ship_to.get("line1")):
        if whole:
            assert whole not in text, whole


def test_a_wrong_or_missing_signature_is_the_same_404_as_no_order(oms: OMS, api_any: ApiServer) -> None:
    number = dispatched_order(oms, "TRK-2")
    url = _link(api_any, number)
    other = dispatched_order(oms, "TRK-3")
    sig = url.split("sig=")[1]
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]   # one character off, whatever the first one is
    answers = [api_any.get(f"/api/track/{number}"), api_any.get(f"/api/track/{number}?sig={forged}"),
               api_any.get(f"/api/track/{other}?sig={sig}"), api_any.get(f"/api/track/NO-SUCH?sig={sig}")]
    assert {r.status for r in answers} == {404}
    assert len({r.json["detail"] for r in answers}) == 1
    assert api_any.get(f"/track/{number}?sig={sig}&extra=1").status == 400



def test_the_cli_gives_the_same_link_as_the_api(oms: OMS, api_any: ApiServer, tmp_path: Path, db_url: str) -> None:
    number = dispatched_order(oms, "TRK-CLI")
    (tmp_path / "cli").mkdir()
    printed = Cli(tmp_path / "cli", db_url)("order", "tracking-link", number).stdout.strip()
    assert printed == _link(api_any, number)
    assert api_any.get(printed).status == 200
