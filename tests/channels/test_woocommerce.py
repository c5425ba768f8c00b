"""The WooCommerce channel: REST API v3 orders read unmodified, amounts exact, webhooks signed as WooCommerce signs."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import html
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from oms_engine import NOT_KEPT, CanonicalOrder
from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders import extensions
from oms_engine.orders.canonical import MAX_EXTENSION_BYTES as EXTENSION_BYTES
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Order, RawPayload, WebhookDelivery
from oms_engine.web.app import create_app
from oms_plugins.channels.woocommerce import WooCommerceChannel
from tests.support import order_json
from tests.support.cli import Cli
from tests.support.web import TOKENS, ApiServer

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
WOO = SAMPLES / "woocommerce"
SECRET = "wc-secret-1"


def sample(name: str) -> Any:
    return json.loads((WOO / name).read_text(encoding="utf-8"))


def the_order() -> dict[str, Any]:
    """A fresh copy of order.json: order 727, two lines (the first without a SKU), paid by bank transfer."""
    return copy.deepcopy(sample("order.json"))


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def cents(text: str) -> int:
    """A USD amount of the samples, worked out apart from the adapter."""
    return int(Decimal(text) * 100)


def count(oms: OMS, model: Any) -> int:
    with oms.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def parse_one(data: Any) -> CanonicalOrder:
    [parsed] = WooCommerceChannel().parse(body(data))
    assert parsed.error is None, parsed.error
    assert parsed.order is not None
    return parsed.order


def parse_error(data: Any) -> str:
    [parsed] = WooCommerceChannel().parse(body(data))
    assert parsed.order is None and parsed.error
    return parsed.error


def channel_sku(line: dict[str, Any]) -> str:
    if line["sku"]:
        return str(line["sku"])
    return f"variation:{line['variation_id']}" if line["variation_id"] else f"product:{line['product_id']}"


def map_skus(oms: OMS, *pairs: tuple[str, str]) -> None:
    oms.masterdata.apply("skus", [Row("t", {"channel": "woocommerce", "channel_sku": c, "sku": s}) for c, s in pairs],
                         actor="t", source="t")


def with_coupon(order: dict[str, Any]) -> dict[str, Any]:
    """Order 727 with a 1.00 coupon on its first line (6.00 -> 5.00), its total 1.00 less, as WooCommerce
    would send it."""
    order["line_items"][0]["total"] = "5.00"
    order["discount_total"] = "1.00"
    order["coupon_lines"] = [{"id": 320, "code": "save1", "discount": "1.00", "discount_tax": "0.00",
                              "meta_data": []}]
    order["total"] = "28.35"
    return order


# -- the samples, through intake -----------------------------------------------------------------------------
def check_stored(oms: OMS, number: str, wc: dict[str, Any]) -> None:
    """The stored order ``number`` field by field against the WooCommerce order ``wc`` it came from."""
    with oms.db.session() as s:
        shown = explain(s, number)
    assert (shown["channel"], shown["external_id"], shown["currency"]) == ("woocommerce", str(wc["id"]), wc["currency"])
    # date_created_gmt has no offset: it is UTC, stored as it is
    assert shown["placed_at"] == wc["date_created_gmt"]
    total = cents(wc["total"])
    assert shown["amounts"] == {
        "goods": sum(cents(ln["subtotal"]) for ln in wc["line_items"]), "freight": cents(wc["shipping_total"]),
        "tax": cents(wc["total_tax"]), "coupon": cents(wc["discount_total"]), "gift_card": 0, "points": 0,
        "payable": total, "paid_amount": total, "refund_amount": 0}
    assert shown["payment"]["transaction_id"] == f"woocommerce:{wc['id']}:{wc['order_key']}"
    [paid] = shown["payments"]
    assert (paid["amount"], paid["method_detail"], paid["provider_ref"]) == (total, wc["payment_method"],
                                                                           f"woocommerce:{wc['id']}:{wc['order_key']}")
    if wc["date_paid_gmt"]:
        assert paid["at"] == wc["date_paid_gmt"] + "Z"
    billing, shipping = wc["billing"], wc["shipping"]
    assert shown["customer"] == (f"woocommerce:{wc['customer_id']}" if wc["customer_id"] else billing["email"])
    assert shown["contact"] == {"name": f"{billing['first_name']} {billing['last_name']}", "email": billing["email"],
                                "phone": billing["phone"]}
    assert shown["ship_to"] == {
        "name": f"{shipping['first_name']} {shipping['last_name']}", "phone": billing["phone"],
        "country": shipping["country"], "region": shipping["state"], "city": shipping["city"], "district": "",
        "line1": shipping["address_1"], "line2": shipping["address_2"], "postcode": shipping["postcode"]}
    assert len(shown["lines"]) == len(wc["line_items"])
    for ln, wl in zip(shown["lines"], wc["line_items"], strict=True):
        subtotal = cents(wl["subtotal"])
        assert ln["channel_sku"] == channel_sku(wl)
        assert (ln["quantity"], ln["unit_price"], ln["goods"]) == (wl["quantity"], subtotal // wl["quantity"], subtotal)
        assert ln["name"] == html.unescape(wl["name"])
        assert ln["promotions"] == []
        assert ln["properties"] == [{"name": m["key"], "value": m["value"]} for m in wl["meta_data"]
                                    if not m["key"].startswith("_")]
        ext = ln["extensions"]
        assert {k: ext[k] for k in ("product_id", "variation_id", "tax_class", "subtotal_tax", "total_tax", "taxes")} \
            == {k: wl[k] for k in ("product_id", "variation_id", "tax_class", "subtotal_tax", "total_tax", "taxes")}
    fields = shown["channel_fields"]
    assert (fields["order_type"], fields["channel_status"]) == (wc["created_via"], wc["status"])
    ext = fields["extensions"]
    for key in ("number", "order_key", "billing", "shipping_lines", "tax_lines", "fee_lines", "coupon_lines",
                "refunds", "meta_data", "payment_method_title", "discount_tax", "shipping_tax", "cart_tax",
                "prices_include_tax", "date_modified_gmt"):
        assert ext[key] == wc[key], key
    assert NOT_KEPT not in ext
    # nothing repeats what a canonical field holds
    assert not {"line_items", "total", "currency", "id", "status", "date_created_gmt"} & set(ext)
    # the test catalogue has none of the shop's products: held until they are mapped, never dropped
    assert shown["status"] == "on_hold"
    assert shown["hold_reason"] == "; ".join(f"unmapped SKU '{channel_sku(wl)}'" for wl in wc["line_items"])


@pytest.mark.parametrize("name", ["order.json", "orders.json"])
def test_each_sample_is_taken_in_field_by_field(oms: OMS, name: str) -> None:
    data = sample(name)
    orders = data if isinstance(data, list) else [data]
    results = oms.intake.ingest("woocommerce", (WOO / name).read_bytes(), source="test")
    assert [r.external_id for r in results] == [str(o["id"]) for o in orders]
    for r, wc in zip(results, orders, strict=True):
        assert r.error is None and r.number, r
        check_stored(oms, r.number, wc)
    assert count(oms, Order) == len(orders)


def test_the_same_payload_again_is_a_duplicate(oms: OMS) -> None:
    raw = (WOO / "order.json").read_bytes()
    [first] = oms.intake.ingest("woocommerce", raw)
    [again] = oms.intake.ingest("woocommerce", raw)
    assert again.duplicate and again.number == first.number and again.content_differs is False
    # orders.json has order 727 again, with one more meta entry, and order 723
    seven, three = oms.intake.ingest("woocommerce", (WOO / "orders.json").read_bytes())
    assert seven.duplicate and seven.number == first.number and seven.content_differs is True
    assert not three.duplicate and three.number
    assert count(oms, Order) == 2


def test_a_consistent_order_with_its_skus_mapped_is_paid_with_totals_that_agree(sqlite_oms: OMS) -> None:
    map_skus(sqlite_oms, ("product:93", "TEA-1"), ("Bar3", "MUG-1"))
    [r] = sqlite_oms.intake.ingest("woocommerce", body(with_coupon(the_order())))
    assert r.error is None and r.status == "paid", r
    with sqlite_oms.db.session() as s:
        shown = explain(s, r.number)
    assert shown["hold_reason"] is None
    assert shown["amounts"]["payable"] == shown["amounts"]["paid_amount"] == 2835
    first, second = shown["lines"]
    assert (first["sku"], first["channel_sku"], first["discount"]) == ("TEA-1", "product:93", 100)
    assert first["promotions"] == [{"code": "save1", "name": "", "kind": "coupon", "amount": 100}]
    assert second["discount"] == 0


def test_fee_lines_are_kept_and_the_order_held_for_the_totals_they_change(sqlite_oms: OMS) -> None:
    map_skus(sqlite_oms, ("product:93", "TEA-1"), ("Bar3", "MUG-1"))
    order = the_order()
    order["fee_lines"] = [{"id": 400, "name": "Gift wrap", "tax_class": "", "tax_status": "none", "total": "2.00",
                           "total_tax": "0.00", "taxes": [], "meta_data": []}]
    order["total"] = "31.35"
    [r] = sqlite_oms.intake.ingest("woocommerce", body(order))
    assert r.status == "on_hold"
    with sqlite_oms.db.session() as s:
        shown = explain(s, r.number)
    assert shown["hold_reason"] == "totals disagree: channel says 31.35 USD, lines add up to 29.35 USD"
    assert shown["channel_fields"]["extensions"]["fee_lines"] == order["fee_lines"]


@pytest.mark.parametrize(("path", "what"), [
    (SAMPLES / "shopify" / "order.json", "a Shopify payload"),
    (SAMPLES / "shopify" / "orders.json", "a Shopify payload"),
    (SAMPLES / "amazon" / "orders.json", "an Amazon Selling Partner API response"),
    (SAMPLES / "amazon" / "order_items.json", "an Amazon Selling Partner API response"),
])
def test_other_channels_payloads_are_refused_as_not_woocommerce(sqlite_oms: OMS, path: Path, what: str) -> None:
    results = sqlite_oms.intake.ingest("woocommerce", path.read_bytes())
    assert results
    for r in results:
        assert r.number is None and r.error
        assert r.error.startswith("not a WooCommerce order: expected a WooCommerce REST API v3 order object")
        assert r.error.endswith(f"got {what}")
    assert count(sqlite_oms, Order) == 0
    assert count(sqlite_oms, RawPayload) == 1     # kept as it came, with why nothing became of it


def test_a_bare_shopify_order_and_the_oms_json_format_are_refused_too() -> None:
    shopify = json.loads((SAMPLES / "shopify" / "order.json").read_text(encoding="utf-8"))["order"]
    assert parse_error(shopify).endswith("got a Shopify payload")
    assert parse_error(order_json("A-1")).endswith("got the OMS's own JSON order format (channel 'json')")
    assert parse_error([1]).endswith("got a number")
    assert "order.deleted" in parse_error({"id": 727})


def test_a_payload_that_is_no_json_says_so() -> None:
    [parsed] = WooCommerceChannel().parse(b"webhook_id=12")
    assert parsed.error and parsed.error.startswith("invalid JSON") and "ping" in parsed.error
    [parsed] = WooCommerceChannel().parse(b"\xef\xbb\xbf{}")
    assert parsed.error and "byte-order mark" in parsed.error


# -- mapping decisions, on the parsed order -------------------------------------------------------------------
def test_amounts_and_lines_of_the_sample_are_exact() -> None:
    o = parse_one(the_order())
    assert (o.freight, o.tax, o.coupon, o.declared_total) == (1000, 135, 0, 2935)
    first, second = o.lines
    # "price": 3 is a JSON number; the unit price comes from the string subtotal "6.00" over 2
    assert (first.sku, first.quantity, first.unit_price, first.channel_line_id) == ("product:93", 2, 300, "315")
    assert (second.sku, second.unit_price) == ("Bar3", 1200)
    assert second.name == "Ship Your Idea \u2013 Color: Black, Size: M Test"     # "&ndash;" as the shop shows it
    assert [(p.name, p.value) for p in second.properties] == [("pa_color", "black"), ("size", "M Test")]
    assert o.payment is not None and o.payment.paid_at is not None
    assert o.payment.paid_at.isoformat() == "2017-03-22T19:28:08+00:00"
    assert o.placed_at is not None and o.placed_at.isoformat() == "2017-03-22T19:28:02+00:00"


def test_a_line_discount_is_a_promotion_with_the_coupon_codes() -> None:
    o = parse_one(with_coupon(the_order()))
    assert o.coupon == 100 and o.lines[0].unit_price == 300
    assert [p.model_dump() for p in o.lines[0].promotions] == [{"code": "save1", "name": "", "kind": "coupon",
                                                               "amount": 100}]
    two = with_coupon(the_order())
    two["coupon_lines"].append({"id": 321, "code": "spring", "discount": "0.00"})
    [promo] = parse_one(two).lines[0].promotions
    assert (promo.code, promo.name, promo.kind) == ("", "save1, spring", "coupon")
    edited = with_coupon(the_order())
    edited["coupon_lines"] = []    # a price cut keyed in by the shop: no coupon says why
    [promo] = parse_one(edited).lines[0].promotions
    assert (promo.code, promo.kind, promo.amount) == ("", "discount", 100)


def test_a_unit_price_that_is_no_whole_number_of_cents_is_an_error_not_rounded() -> None:
    order = the_order()
    order["line_items"][0].update(quantity=3, subtotal="10.00", total="10.00")
    error = parse_error(order)
    assert "line_items.0.subtotal: 10.00 USD for 3 units is 3.333333\u2026 a unit, not a whole number of minor " \
           "units" in error
    order["line_items"][0].update(quantity=4, subtotal="10.10", total="10.10")
    assert "is 2.525 a unit" in parse_error(order)


def test_a_line_without_sku_is_known_by_its_variation_then_its_product() -> None:
    order = the_order()
    order["line_items"][1]["sku"] = ""
    order["line_items"].append(dict(order["line_items"][0], id=330, sku=None, product_id=0, variation_id=0))
    assert "line_items.2.sku: None is no SKU" in parse_error(order)
    order["line_items"].pop()
    first, second = parse_one(order).lines
    assert (first.sku, second.sku) == ("product:93", "variation:23")
    assert second.extensions["variation_id"] == 23 and second.extensions["product_id"] == 22


@pytest.mark.parametrize(("change", "ref"), [
    (lambda o: o.update(customer_id=26), "woocommerce:26"),
    (lambda o: o["billing"].update(email="John.Doe@Example.com"), "john.doe@example.com"),
    (lambda o: o["billing"].update(email=""), "woocommerce:guest:727"),
])
def test_the_customer_is_the_account_else_the_address(change: Callable[[dict[str, Any]], None], ref: str) -> None:
    order = the_order()
    change(order)
    o = parse_one(order)
    assert o.customer.ref == ref
    assert o.customer.email == order["billing"]["email"]


@pytest.mark.parametrize(("status", "paid_gmt", "txn", "method", "expected"), [
    ("processing", "2017-03-22T19:28:08", "", "bacs", ("woocommerce:727:wc_order_58d2d042d1d", "bacs")),
    ("completed", None, "ch_3Nx", "stripe", ("ch_3Nx", "stripe")),
    ("processing", None, "", "cod", ("woocommerce:727:wc_order_58d2d042d1d", "cod")),
    ("on-hold", "2017-03-22T19:28:08", "", "bacs", ("woocommerce:727:wc_order_58d2d042d1d", "bacs")),
    ("pending", None, "", "paypal", None),
    ("on-hold", None, "", "bacs", None),
    ("refunded", "2017-03-22T19:28:08", "ch_9", "stripe", None),
    ("cancelled", "2017-03-22T19:28:08", "", "stripe", None),
])
def test_a_payment_when_woocommerce_has_one(status: str, paid_gmt: str | None, txn: str, method: str,
                                           expected: tuple[str, str] | None) -> None:
    order = the_order()
    order.update(status=status, date_paid_gmt=paid_gmt, transaction_id=txn, payment_method=method)
    o = parse_one(order)
    assert o.channel_status == status
    if expected is None:
        assert o.payment is None
        # not paid yet, or paid and then paid back or cancelled: how and when are still there to see
        assert {k: o.extensions[k] for k in ("date_paid_gmt", "transaction_id", "payment_method")} == \
            {"date_paid_gmt": paid_gmt, "transaction_id": txn, "payment_method": method}
    else:
        assert o.payment is not None
        assert (o.payment.transaction_id, o.payment.method, o.payment.amount) == (*expected, 2935)


def test_what_has_no_canonical_place_is_kept_and_bounded() -> None:
    order = the_order()
    order["wpml_language"] = "pt-br"                       # a plugin's field: kept as sent
    order["shipping"].update(company="Acme", phone="+1 555 0100")
    order["meta_data"] = [{"id": i, "key": f"_k{i}", "value": "v" * 200} for i in range(200)]
    order["line_items"][1]["meta_data"].append({"id": 9, "key": "_reduced_stock", "value": "1"})
    order["line_items"][1]["meta_data"].append({"id": 10, "key": "gift", "value": {"to": "Ann"}})
    order["customer_note"] = "Leave it\nat the door"
    o = parse_one(order)
    assert o.extensions["wpml_language"] == "pt-br"
    assert o.extensions["shipping"] == {"company": "Acme"}
    assert o.ship_to.phone == "+1 555 0100"
    assert "meta_data" not in o.extensions                 # 40 KB of it: left out, and said so
    assert o.extensions[NOT_KEPT][0].startswith("meta_data: ")
    assert o.extensions[NOT_KEPT][-1] == "all of it is in the raw payload"
    assert len(json.dumps(o.extensions, ensure_ascii=False, separators=(",", ":")).encode()) <= EXTENSION_BYTES
    assert o.extensions["billing"] == order["billing"]
    # hidden meta and meta WooCommerce would not show are the line's extensions, not its properties
    assert [p.name for p in o.lines[1].properties] == ["pa_color", "size"]
    assert [m["key"] for m in o.lines[1].extensions["meta_data"]] == ["_reduced_stock", "gift"]
    assert o.note == "Leave it\nat the door"


def test_extensions_the_model_refuses_anyway_cost_the_extensions_not_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # Should the fitting and the model ever disagree on the bound, the order is still taken in.
    monkeypatch.setattr(extensions, "MAX_EXTENSION_BYTES", 1_000_000)
    order = the_order()
    order["meta_data"] = [{"id": i, "key": f"_k{i}", "value": "v" * 200} for i in range(100)]
    o = parse_one(order)
    assert o.extensions == {NOT_KEPT: [o.extensions[NOT_KEPT][0], "all of it is in the raw payload"]}
    assert o.extensions[NOT_KEPT][0].startswith("refused by the OMS: extension fields take")
    assert o.lines[1].extensions["variation_id"] == 23


@pytest.mark.parametrize(("change", "field"), [
    (lambda o: o.update(currency="usd"), "currency: "),
    (lambda o: o.update(id="727"), "id: the order's id"),
    (lambda o: o.update(total=29.35), "total: an amount is a decimal string"),
    (lambda o: o.pop("total"), "total: required"),
    (lambda o: o.update(total_tax="-1.35"), "total_tax: "),
    (lambda o: o.update(shipping_total="10.001"), "shipping_total: "),
    (lambda o: o["line_items"][0].update(quantity=1.5), "line_items.0.quantity: a whole number"),
    (lambda o: o["line_items"][0].update(quantity=0), "line_items.0.quantity: a whole number"),
    (lambda o: o["line_items"][1].update(subtotal="12,00"), "line_items.1.subtotal: "),
    (lambda o: o.update(line_items=[]), "line_items: "),
    (lambda o: o.update(line_items={}), "line_items: "),
    (lambda o: o["shipping"].update(country="us"), "shipping.country: "),
    (lambda o: o["billing"].update(email="x" * 300), "billing.email: "),
    (lambda o: o["billing"].update(phone=5555), "billing.phone: a string is expected"),
    (lambda o: o.update(date_created_gmt="22/03/2017"), "date_created_gmt: "),
    (lambda o: o.update(billing=[]), "billing: an object is expected"),
    (lambda o: o.update(payment_method="p" * 65), "payment_method: "),
])
def test_errors_name_the_woocommerce_field(change: Callable[[dict[str, Any]], Any], field: str) -> None:
    order = the_order()
    change(order)
    error = parse_error(order)
    assert field in error, error


def test_one_bad_order_of_a_list_costs_that_order_only() -> None:
    good, bad = the_order(), the_order()
    bad.update(id=728, currency="XYZ")
    first, second = WooCommerceChannel().parse(body([good, bad]))
    assert first.order is not None and first.external_id == "727"
    assert second.order is None and second.external_id == "728" and second.error and "currency" in second.error


# -- fuzzing: whatever comes, parse answers with an order or an error ------------------------------------------
ODD: list[Any] = [None, True, False, 0, -1, 2 ** 63, -(10 ** 30), 10 ** 39, 1.5, -0.01, "", " 1.00", "-1.00", "1e3",
                  "NaN", "0x10", "\u0661\u0662\u0663", "\x00", "\ud800", "\u202e", "x" * 3000, "&ndash;&#039;",
                  [], {}, [[[[[[[[[[1]]]]]]]]]], {"": 1}, "99999999999999999999999.99", "2017-02-30T25:00:00",
                  "0000-00-00T00:00:00", {"key": "_x"}]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    order: Any = copy.deepcopy(draw(st.sampled_from([sample("order.json"), *sample("orders.json")])))
    for _ in range(draw(st.integers(1, 4))):
        spots = [(), *_paths(order)]
        path = draw(st.sampled_from(spots))
        if not path:
            order = copy.deepcopy(draw(st.sampled_from(ODD)))   # a copy: later mutations must not change ODD
            continue
        parent = order
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "odd", "negate", "text"]))
        if action == "drop":
            del parent[key]
        elif action == "negate" and isinstance(parent[key], str | int | float) and not isinstance(parent[key], bool):
            parent[key] = f"-{parent[key]}" if isinstance(parent[key], str) else -parent[key]
        elif action == "text":
            parent[key] = draw(st.text(max_size=80))
        else:
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD)))
    return order


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parse_never_raises_on_mutated_samples(data: Any) -> None:
    results = WooCommerceChannel().parse(json.dumps(data).encode())
    for r in results:
        assert (r.order is None) != (r.error is None), r
        if r.order is not None:
            assert isinstance(r.order, CanonicalOrder) and r.order.channel == "woocommerce"
        else:
            assert isinstance(r.error, str) and r.error


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_raises_on_any_bytes(raw: bytes) -> None:
    for r in WooCommerceChannel().parse(raw):
        assert r.order is not None or r.error


# -- webhook signatures ----------------------------------------------------------------------------------------
def signed(raw: bytes, secret: str = SECRET, delivery: str = "9f3c1e0d8b7a6f5e4d3c2b1a0f9e8d7c") -> dict[str, str]:
    """The headers WooCommerce puts on a delivery (class-wc-webhook.php, deliver())."""
    sig = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "X-WC-Webhook-Source": "https://shop.example/",
            "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Resource": "order", "X-WC-Webhook-Event": "created",
            "X-WC-Webhook-Signature": sig, "X-WC-Webhook-ID": "12", "X-WC-Webhook-Delivery-ID": delivery}


def test_verify_takes_the_signature_woocommerce_makes_and_nothing_else() -> None:
    wc = WooCommerceChannel()
    raw = (WOO / "order.json").read_bytes()
    headers = signed(raw)
    assert wc.verify(headers, raw, SECRET)
    assert wc.verify({k.lower(): v for k, v in headers.items()}, raw, SECRET)      # header names in any case
    assert not wc.verify(headers, raw.replace(b"29.35", b"19.35"), SECRET)          # a tampered body
    assert not wc.verify(headers, raw, "another-secret")
    assert not wc.verify({k: v for k, v in headers.items() if k != "X-WC-Webhook-Signature"}, raw, SECRET)
    assert not wc.verify(headers, raw, "")                                         # an empty key signs nothing
    assert not wc.verify(signed(raw, secret=""), raw, "")
    assert not wc.verify({**headers, "X-WC-Webhook-Signature": headers["X-WC-Webhook-Signature"] + "\u00e9"}, raw,
                         SECRET)


def test_verify_decodes_the_secret_as_woocommerce_does() -> None:
    # WooCommerce signs with wp_specialchars_decode(secret, ENT_QUOTES)
    raw = b"{}"
    assert WooCommerceChannel().verify(signed(raw, secret="a&b<c'\"&lt;"), raw, "a&amp;b&lt;c&#039;&quot;&amp;lt;")
    assert WooCommerceChannel().verify(signed(raw, secret="x&y"), raw, "x&#x26;y")


def test_delivery_is_woocommerces_id_with_the_signature_and_no_time() -> None:
    wc = WooCommerceChannel()
    headers = signed(b"{}")
    found = wc.delivery(headers)
    assert found is not None
    key, at = found
    assert key == f"{headers['X-WC-Webhook-Delivery-ID']}:{headers['X-WC-Webhook-Signature'][:24]}"
    assert at is None       # WooCommerce sends none: only replays of the id are refused
    # the same WooCommerce id for another body (same webhook, same second): another delivery
    other = wc.delivery(signed(b"[]"))
    assert other is not None and other[0] != key
    assert wc.delivery({"X-WC-Webhook-Signature": "abc="}) is None
    with pytest.raises(ValueError, match="X-WC-Webhook-Delivery-ID"):
        wc.delivery({"x-wc-webhook-delivery-id": "has space"})


# -- webhooks through the admin API ----------------------------------------------------------------------------
@pytest.fixture
def shop_api(sqlite_oms: OMS, serve: Callable[..., ApiServer], monkeypatch: pytest.MonkeyPatch) -> ApiServer:
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_WOOCOMMERCE", SECRET)
    # WooCommerce sends no signing time: the adapter gives the time of receipt, so the OMS's clock must be the
    # wall clock's, as it is outside tests.
    assert isinstance(sqlite_oms.clock, SimulatedClock)
    sqlite_oms.clock.advance_to(utcnow())
    return serve(create_app(sqlite_oms, tokens=TOKENS))


def test_a_signed_webhook_is_taken_in_and_a_forged_one_refused(sqlite_oms: OMS, shop_api: ApiServer) -> None:
    raw = (WOO / "order.json").read_bytes()
    r = shop_api.post("/api/webhooks/woocommerce", body=raw, headers=signed(raw))
    assert r.status == 200, r.json
    [result] = r.json["results"]
    assert result["external_id"] == "727" and result["number"] and result["status"] == "on_hold"
    forged = raw.replace(b"29.35", b"0.01")
    for headers in (signed(raw), signed(forged, secret="guessed"), {"X-WC-Webhook-Delivery-ID": "d-1"}):
        r = shop_api.post("/api/webhooks/woocommerce", body=forged, headers=headers)
        assert r.status == 401, r.json
        assert "signature" in r.json["detail"]
    # a byte-identical copy (WooCommerce retries until it gets a 2xx) is answered as received and stores nothing;
    # the ping WooCommerce sends, unsigned, when a webhook is saved is answered and stores nothing either
    again = shop_api.post("/api/webhooks/woocommerce", body=raw, headers=signed(raw))
    assert again.status == 200 and again.json["results"] == [] and "received already" in again.json["message"]
    ping = shop_api.post("/api/webhooks/woocommerce", body=b"webhook_id=12",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ping.status == 200 and ping.json == {"ping": True, "channel": "woocommerce"}
    assert count(sqlite_oms, Order) == 1 and count(sqlite_oms, RawPayload) == 1


def test_two_deliveries_in_one_second_share_woocommerces_id_and_both_count(sqlite_oms: OMS,
                                                                             shop_api: ApiServer) -> None:
    one, two = the_order(), the_order()
    two["id"] = 728
    for order in (one, two):
        raw = body(order)
        r = shop_api.post("/api/webhooks/woocommerce", body=raw, headers=signed(raw, delivery="same-second"))
        assert r.status == 200, r.json
    assert count(sqlite_oms, Order) == 2 and count(sqlite_oms, WebhookDelivery) == 2


# -- the command in docs/channels/woocommerce.md ---------------------------------------------------------------
def test_the_documented_ingest_command_works(cli: Cli) -> None:
    p = cli("ingest", "--channel", "woocommerce", str(WOO / "orders.json"))
    lines = p.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["727", "723"]
    assert all(ln.endswith(" on_hold") for ln in lines), p.stdout
