"""The Amazon SP-API channel: Orders v0 responses read unmodified, joined by AmazonOrderId, amounts exact."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders.explain import explain
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import Order, RawPayload
from oms_engine.web.app import create_app
from oms_plugins.channels.amazon import AmazonChannel
from tests.support import order_json, payload
from tests.support.cli import Cli
from tests.support.web import TOKENS, ApiServer

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
AMAZON = SAMPLES / "amazon"
ORDER = "902-1845936-5435065"          # the sample order with items and an address
WITHOUT_ITEMS = ("902-8745147-1934268", "902-3159896-1390916")


def sample(name: str) -> list[dict[str, Any]]:
    return json.loads((AMAZON / name).read_text(encoding="utf-8"))


def joined() -> list[dict[str, Any]]:
    """The three sample files' lists as one payload, each response as Amazon sent it."""
    return sample("orders.json") + sample("order_items.json") + sample("order_address.json")


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def minor(money: dict[str, str]) -> int:
    return int(Decimal(money["Amount"]) * 100)


def count(oms: OMS, model: Any) -> int:
    with oms.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def map_sku(oms: OMS, channel_sku: str, sku: str = "TEA-1") -> None:
    oms.masterdata.apply("skus", [Row("t", {"channel": "amazon", "channel_sku": channel_sku, "sku": sku})],
                         actor="t", source="t")


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": amount}


def header(ext: str = "111-0000001-0000001", *, status: str = "Unshipped", total: str | None = "11.01",
           currency: str = "USD", **extra: Any) -> dict[str, Any]:
    h: dict[str, Any] = {"AmazonOrderId": ext, "PurchaseDate": "2026-11-20T09:30:00Z",
                         "LastUpdateDate": "2026-11-20T09:35:00Z", "OrderStatus": status, "OrderType": "StandardOrder",
                         "FulfillmentChannel": "MFN", "PaymentMethod": "Other", "MarketplaceId": "ATVPDKIKX0DER"}
    if total is not None:
        h["OrderTotal"] = money(total, currency)
    h.update(extra)
    return h


def item(sku: str | None = "AMZ-SKU-1", *, quantity: int = 1, price: str = "10.00", tax: str = "1.01",
         currency: str = "USD", **extra: Any) -> dict[str, Any]:
    it: dict[str, Any] = {"ASIN": "B000000001", "OrderItemId": f"OI-{sku}", "QuantityOrdered": quantity,
                          "Title": "A thing", "ItemPrice": money(price, currency), "ItemTax": money(tax, currency)}
    if sku is not None:
        it["SellerSKU"] = sku
    it.update(extra)
    return it


def responses(h: dict[str, Any], *items: dict[str, Any], next_token: str | None = None) -> list[dict[str, Any]]:
    page: dict[str, Any] = {"AmazonOrderId": h["AmazonOrderId"], "OrderItems": list(items)}
    if next_token:
        page["NextToken"] = next_token
    return [{"payload": {"Orders": [h]}}, {"payload": page}]


def parse_one(data: Any) -> Any:
    [parsed] = AmazonChannel().parse(body(data))
    assert parsed.error is None, parsed.error
    return parsed.order


def parse_error(data: Any) -> str:
    [parsed] = AmazonChannel().parse(body(data))
    assert parsed.order is None and parsed.error
    return parsed.error


# -- the samples, through intake ---------------------------------------------------------------------------
def test_the_three_sample_files_together_make_the_order_field_by_field(oms: OMS) -> None:
    results = oms.intake.ingest("amazon", body(joined()), source="test")
    assert [r.external_id for r in results] == [ORDER, *WITHOUT_ITEMS]
    made, *missing = results
    assert made.error is None and made.number
    for r, ext in zip(missing, WITHOUT_ITEMS, strict=True):
        assert r.number is None and r.error and ext in r.error and "getOrderItems" in r.error
    assert count(oms, Order) == 1

    [head] = [o for page in sample("orders.json") for o in page["payload"]["Orders"] if o["AmazonOrderId"] == ORDER]
    [it] = sample("order_items.json")[0]["payload"]["OrderItems"]
    address = sample("order_address.json")[0]["payload"]["ShippingAddress"]
    with oms.db.session() as s:
        shown = explain(s, made.number)
        o = get_order(s, made.number)
        assert (o.delivery_from.isoformat() + "Z", o.delivery_by.isoformat() + "Z") == \
            (head["EarliestDeliveryDate"], head["LatestDeliveryDate"])
        assert o.declared_total == minor(head["OrderTotal"]) == 1101
        assert o.payment_method == head["PaymentMethod"]
        assert o.note == f"Amazon: the buyer asked to cancel item {it['OrderItemId']} ({it['SellerSKU']}): " \
                         f"{it['BuyerRequestedCancel']['BuyerCancelReason']}"
    assert (shown["channel"], shown["external_id"], shown["currency"]) == ("amazon", ORDER, "USD")
    assert shown["placed_at"].startswith(head["PurchaseDate"].removesuffix("Z"))
    goods, tax = minor(it["ItemPrice"]), minor(it["ItemTax"])
    assert shown["amounts"] == {"goods": goods, "freight": 0, "tax": tax, "coupon": 0, "gift_card": 0, "points": 0,
                                "payable": goods + tax, "paid_amount": minor(head["OrderTotal"]), "refund_amount": 0}
    assert shown["payment"]["transaction_id"] == f"amazon:{ORDER}"
    # Its SKU is not in the test catalogue: stored and held, never dropped.
    assert shown["status"] == "on_hold" and f"unmapped SKU '{it['SellerSKU']}'" in shown["hold_reason"]
    assert shown["customer"] == f"amazon:{ORDER}"      # no BuyerInfo in the sample: the order names the buyer
    assert shown["contact"] == {"name": address["Name"], "email": "", "phone": address["Phone"]}
    assert shown["ship_to"] == {"name": address["Name"], "phone": address["Phone"], "country": address["CountryCode"],
                                "region": address["StateOrRegion"], "city": address["City"], "district": "",
                                "line1": address["AddressLine1"], "line2": "", "postcode": address["PostalCode"]}
    [line] = shown["lines"]
    assert (line["sku"], line["channel_sku"], line["name"], line["quantity"], line["unit_price"], line["goods"]) == \
        (it["SellerSKU"], it["SellerSKU"], it["Title"], it["QuantityOrdered"], goods, goods)
    assert line["promotions"] == [] and line["properties"] == []
    left_out = {"SellerSKU", "Title", "QuantityOrdered", "ItemPrice", "PromotionDiscount"}
    assert line["extensions"] == {k: v for k, v in it.items() if k not in left_out}
    assert line["extensions"]["ItemTax"] == it["ItemTax"] and line["extensions"]["ASIN"] == it["ASIN"]
    mapped = {"AmazonOrderId", "PurchaseDate", "OrderStatus", "OrderType", "OrderTotal", "PaymentMethod",
              "EarliestDeliveryDate", "LatestDeliveryDate"}
    assert shown["channel_fields"] == {
        "order_type": head["OrderType"], "channel_status": head["OrderStatus"],
        "extensions": {**{k: v for k, v in head.items() if k not in mapped},
                       "ShippingAddress": {"AddressType": address["AddressType"]}}}


def test_with_its_sku_mapped_the_sample_order_is_paid_and_its_totals_agree(sqlite_oms: OMS) -> None:
    map_sku(sqlite_oms, "NABetaASINB00551Q3CS")
    made = sqlite_oms.intake.ingest("amazon", body(joined()))[0]
    assert made.status == "paid", made
    with sqlite_oms.db.session() as s:
        o = get_order(s, made.number)
        assert (o.payable, o.paid_amount, o.declared_total, o.payment_txn) == (1101, 1101, 1101, f"amazon:{ORDER}")
        assert o.lines[0].sku == "TEA-1" and o.lines[0].channel_sku == "NABetaASINB00551Q3CS"


def test_each_sample_file_alone_says_what_it_lacks(sqlite_oms: OMS) -> None:
    headers_only = sqlite_oms.intake.ingest("amazon", (AMAZON / "orders.json").read_bytes())
    assert [r.external_id for r in headers_only] == [ORDER, *WITHOUT_ITEMS]
    for r in headers_only:
        assert r.number is None and r.error
        assert f"order {r.external_id}: its items are not in the payload" in r.error and "getOrderItems" in r.error
    [items_only] = sqlite_oms.intake.ingest("amazon", (AMAZON / "order_items.json").read_bytes())
    assert items_only.external_id == ORDER and items_only.number is None and items_only.error
    assert f"order {ORDER}: its items (getOrderItems) are in the payload but not the order itself" in items_only.error
    [address_only] = sqlite_oms.intake.ingest("amazon", (AMAZON / "order_address.json").read_bytes())
    assert address_only.error and f"order {ORDER}: its address (getOrderAddress) is in the payload" in \
        address_only.error
    assert count(sqlite_oms, Order) == 0
    with sqlite_oms.db.session() as s:
        # Kept verbatim, so the pieces can be sent again together.
        assert [r.body for r in s.scalars(select(RawPayload).order_by(RawPayload.id))] == \
            [(AMAZON / n).read_bytes() for n in ("orders.json", "order_items.json", "order_address.json")]


def test_the_same_payload_again_is_a_duplicate(oms: OMS) -> None:
    [first, *_] = oms.intake.ingest("amazon", body(joined()))
    [again, *errors] = oms.intake.ingest("amazon", body(joined()))
    assert again.duplicate and again.number == first.number and not again.content_differs
    assert all(e.error for e in errors)
    assert count(oms, Order) == 1


@pytest.mark.parametrize("source", ["shopify/order.json", "shopify/orders.json", "woocommerce/order.json",
                                    "woocommerce/orders.json", "oms json"])
def test_another_channels_payload_is_refused_saying_what_was_expected(sqlite_oms: OMS, source: str) -> None:
    data = payload(order_json("J-1")) if source == "oms json" else (SAMPLES / source).read_bytes()
    [result] = sqlite_oms.intake.ingest("amazon", data)
    assert result.number is None and result.error
    assert result.error.startswith("not an SP-API Orders response")
    assert "expected SP-API Orders v0 responses" in result.error and "getOrderItems" in result.error
    assert count(sqlite_oms, Order) == 0


# -- the join --------------------------------------------------------------------------------------------
def test_an_order_in_several_pages_is_one_order_the_latest_update_winning() -> None:
    older = header(status="Unshipped", LastUpdateDate="2026-11-20T09:35:00Z")
    newer = header(status="Shipped", LastUpdateDate="2026-11-21T08:00:00+08:00")
    items = {"payload": {"AmazonOrderId": older["AmazonOrderId"], "OrderItems": [item()]}}
    for pages in ([newer, older], [older, newer]):
        data = [{"payload": {"Orders": [pages[0]]}}, items, {"payload": {"Orders": [pages[1]]}}]
        assert parse_one(data).channel_status == "Shipped"
    # Equally recent: the later in the payload.
    same = header(status="PartiallyShipped")
    assert parse_one([{"payload": {"Orders": [header(), same]}}, items]).channel_status == "PartiallyShipped"


def test_items_in_several_pages_are_joined_and_the_last_page_is_needed() -> None:
    h = header(total="22.02")
    first, second = item("A"), item("B")
    pages = [*responses(h, first, next_token="more"),
             {"payload": {"AmazonOrderId": h["AmazonOrderId"], "OrderItems": [second, first]}}]
    assert [ln.sku for ln in parse_one(pages).lines] == ["A", "B"]
    error = parse_error(responses(h, first, next_token="more"))
    assert "more pages (NextToken)" in error and h["AmazonOrderId"] in error


def test_a_get_order_response_and_the_headers_own_address_and_buyer_are_read() -> None:
    address = {"Name": "Jane Roe", "AddressLine1": "1 Main St", "AddressLine2": "Apt 4", "AddressLine3": "Rear",
               "City": "Canton", "StateOrRegion": "MI", "PostalCode": "48817", "CountryCode": "US",
               "County": "Wayne", "Phone": "555-0100"}
    h = header(ShippingAddress=address, BuyerInfo={"BuyerEmail": "abc@marketplace.amazon.com", "BuyerName": "Jane",
                                                   "PurchaseOrderNumber": "PO-7"})
    data = [{"payload": h}, {"payload": {"AmazonOrderId": h["AmazonOrderId"], "OrderItems": [item(None)]}}]
    o = parse_one(data)
    assert o.customer.model_dump(exclude_defaults=True) == {
        "ref": "abc@marketplace.amazon.com", "name": "Jane", "email": "abc@marketplace.amazon.com", "phone": "555-0100"}
    assert (o.ship_to.line1, o.ship_to.line2, o.ship_to.region) == ("1 Main St", "Apt 4, Rear", "MI")
    assert o.extensions["ShippingAddress"] == {"County": "Wayne"} and o.extensions["BuyerInfo"] == {
        "PurchaseOrderNumber": "PO-7"}
    assert o.lines[0].sku == "B000000001"      # no SellerSKU: the ASIN


def test_a_buyer_info_response_names_the_buyer_and_an_error_response_is_quoted() -> None:
    h = header()
    buyer = {"payload": {"AmazonOrderId": h["AmazonOrderId"], "BuyerEmail": "x@marketplace.amazon.com",
                         "PurchaseOrderNumber": "PO-9"}}
    o = parse_one([*responses(h, item()), buyer])
    assert (o.customer.ref, o.extensions["BuyerInfo"]) == ("x@marketplace.amazon.com", {"PurchaseOrderNumber": "PO-9"})
    error = parse_error({"errors": [{"code": "InvalidInput", "message": "Invalid Input"}]})
    assert "an SP-API error response, with no orders: InvalidInput: Invalid Input" in error
    assert AmazonChannel().parse(body({"payload": {"Orders": []}})) == []


def test_the_pieces_of_a_foreign_list_are_named_and_the_orders_still_read() -> None:
    data = [*responses(header(), item()), {"order": {"id": 1}}]
    good, stray = AmazonChannel().parse(body(data))
    assert good.order is not None
    assert stray.order is None and stray.error and stray.error.startswith("[2]: not an SP-API response")


# -- the amounts -------------------------------------------------------------------------------------------
def test_every_amount_is_mapped_exactly_and_the_total_agrees(sqlite_oms: OMS) -> None:
    # 20.00 for two, 5.00 shipping less 1.00, 3.00 gift wrap, 2.00 off, taxes 1.60 + 0.40 + 0.24.
    it = item("GIFT-1", quantity=2, price="20.00", tax="1.60", ShippingPrice=money("5.00"),
              ShippingDiscount=money("1.00"), ShippingTax=money("0.40"), PromotionDiscount=money("2.00"),
              PromotionIds=["SPRING", "VIP"],
              BuyerInfo={"GiftWrapPrice": money("3.00"), "GiftWrapTax": money("0.24"),
                         "GiftMessageText": "Happy birthday", "GiftWrapLevel": "Classic"})
    h = header(total="27.24")
    o = parse_one(responses(h, it))
    [line] = o.lines
    assert (line.unit_price, line.quantity) == (1000, 2)
    assert (o.freight, o.tax, o.coupon, o.declared_total) == (500 - 100 + 300, 160 + 40 + 24, 200, 2724)
    assert [p.model_dump() for p in line.promotions] == [{"code": "SPRING,VIP", "name": "", "kind": "PromotionDiscount",
                                                         "amount": 200}]
    assert [p.model_dump() for p in line.properties] == [{"name": "GiftMessageText", "value": "Happy birthday"},
                                                        {"name": "GiftWrapLevel", "value": "Classic"}]
    assert line.extensions["ShippingPrice"] == money("5.00") and line.extensions["ShippingDiscount"] == money("1.00")
    assert line.extensions["BuyerInfo"] == {"GiftWrapPrice": money("3.00"), "GiftWrapTax": money("0.24")}
    assert o.payment is not None and (o.payment.amount, o.payment.method) == (2724, "Other")
    map_sku(sqlite_oms, "GIFT-1")
    [r] = sqlite_oms.intake.ingest("amazon", body(responses(h, it)))
    assert r.status == "paid", r       # the OMS's own arithmetic comes to OrderTotal: no hold


def test_prices_that_include_vat_give_no_tax_on_top() -> None:
    o = parse_one(responses(header(total="11.90", currency="EUR"), item(price="11.90", tax="1.90", currency="EUR")))
    assert (o.currency, o.lines[0].unit_price, o.tax, o.declared_total) == ("EUR", 1190, 0, 1190)
    assert o.extensions["TaxIncludedInPrices"] is True and o.lines[0].extensions["ItemTax"] == money("1.90", "EUR")


def test_an_order_total_that_does_not_add_up_is_kept_and_the_order_held(sqlite_oms: OMS) -> None:
    map_sku(sqlite_oms, "AMZ-SKU-1")
    [r] = sqlite_oms.intake.ingest("amazon", body(responses(header(total="50.00"), item())))
    assert r.status == "on_hold"
    with sqlite_oms.db.session() as s:
        reason = get_order(s, r.number).hold_reason
    assert "totals disagree: channel says 50.00 USD, lines add up to 11.01 USD" in reason


def test_a_price_that_does_not_divide_into_whole_cents_is_an_error_not_rounded() -> None:
    error = parse_error(responses(header(total="11.01"), item(quantity=3)))
    assert "OrderItems.0.ItemPrice: 10.00 for 3 units is not a whole number of USD minor units" in error


@pytest.mark.parametrize(("change", "field"), [
    (lambda h, it: it["ItemTax"].update(CurrencyCode="EUR"), "OrderItems.0.ItemTax.CurrencyCode: EUR, but OrderTotal"),
    (lambda h, it: it.update(ShippingPrice=money("1.00", "GBP")), "OrderItems.0.ShippingPrice.CurrencyCode: GBP"),
    (lambda h, it: it["ItemPrice"].update(Amount="-1.00"), "OrderItems.0.ItemPrice.Amount: '-1.00' is negative"),
    (lambda h, it: it["ItemPrice"].update(Amount=10), "OrderItems.0.ItemPrice.Amount: an amount is a decimal"),
    (lambda h, it: h["OrderTotal"].update(CurrencyCode="XYZ"), "OrderTotal.CurrencyCode"),
    (lambda h, it: it.update(SellerSKU="S" * 65), "OrderItems.0.SellerSKU: String should have at most 64"),
    (lambda h, it: it.update(QuantityOrdered=0), "OrderItems.0.QuantityOrdered"),
    (lambda h, it: h.update(PurchaseDate="yesterday"), "PurchaseDate: 'yesterday' is not an RFC 3339"),
    (lambda h, it: h.update(OrderType=["x"]), "OrderType: Input should be a valid string"),
    (lambda h, it: it.update(ShippingPrice=money("1.00"), ShippingDiscount=money("2.00")),
     "ShippingDiscount: the discounts on shipping (2.00 USD) are more than what was charged for it (1.00 USD)"),
])
def test_what_cannot_be_read_is_an_error_naming_the_sp_api_field(change: Any, field: str) -> None:
    h, it = header(), item()
    change(h, it)
    assert field in parse_error(responses(h, it))


def test_a_cod_order_carries_its_fee_as_freight_and_a_long_title_is_cut_but_kept() -> None:
    title = "T" * 250
    o = parse_one(responses(header(total="14.01", PaymentMethod="COD"),
                            item(Title=title, CODFee=money("3.00"), CODFeeDiscount=money("0.00"))))
    assert (o.freight, o.payment.method, o.payment.amount) == (300, "COD", 1401)
    [line] = o.lines
    assert line.name == "T" * 199 + "…" and line.extensions["Title"] == title


def test_an_order_amazon_has_not_charged_has_no_payment_and_a_canceled_one_is_read_as_cancelled() -> None:
    o = parse_one(responses(header(status="Pending"), item()))
    assert o.payment is None and o.channel_status == "Pending" and o.extensions["PaymentMethod"] == "Other"
    assert not o.cancelled
    gone = parse_one(responses(header(status="Canceled"), item()))
    assert gone.cancelled and gone.payment is None and gone.channel_status == "Canceled"


# -- no webhook --------------------------------------------------------------------------------------------
@pytest.fixture
def api(sqlite_oms: OMS) -> Iterator[ApiServer]:
    server = ApiServer(create_app(sqlite_oms, tokens=TOKENS))
    yield server
    server.close()


def test_verify_refuses_every_delivery() -> None:
    assert AmazonChannel().verify({"X-OMS-Signature": "sha256=00"}, body(joined()), "secret") is False


@pytest.mark.parametrize("secret", [None, "whsec-test-1"])
def test_a_webhook_delivery_to_amazon_is_refused_and_nothing_stored(
        sqlite_oms: OMS, api: ApiServer, monkeypatch: pytest.MonkeyPatch, secret: str | None) -> None:
    if secret is None:
        monkeypatch.delenv("OMS_WEBHOOK_SECRET_AMAZON", raising=False)
    else:
        monkeypatch.setenv("OMS_WEBHOOK_SECRET_AMAZON", secret)
    r = api.webhook("amazon", body(joined()))
    assert r.status == 404
    assert "channel 'amazon' takes no webhooks: its orders are pulled (oms channels pull)" in r.json["detail"]
    assert (count(sqlite_oms, RawPayload), count(sqlite_oms, Order)) == (0, 0)


# -- the command the docs show ----------------------------------------------------------------------------
def test_the_documented_ingest_command_takes_the_joined_file(cli: Cli) -> None:
    path = cli.tmp_path / "amazon.json"
    path.write_bytes(body(joined()))
    out = json.loads(cli("ingest", "--channel", "amazon", str(path), "--json", ok=False).stdout)
    assert [(r["external_id"], "number" in r) for r in out] == [(ORDER, True), *((e, False) for e in WITHOUT_ITEMS)]


# -- never raises ------------------------------------------------------------------------------------------
JOINED = joined()
_ODD = st.sampled_from(["", " ", "\x00", "\u202e", "١٢٣", "1e5", "NaN", "-0.00", "0.001", "9" * 40, "x" * 300,
                        "2024-13-45T99:99:99Z", "1970-01-01T00:00:00", "USD", "EUR", "XXX", "JPY", "true"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), _ODD)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_of_the_samples_never_make_parse_raise(data: st.DataObject) -> None:
    doc: Any = copy.deepcopy(JOINED)
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        # Mostly inside the order that has items and an address: mutating the others only changes their errors.
        root = data.draw(st.sampled_from([(0, "payload", "Orders", 0), (3, "payload", "OrderItems", 0),
                                          (4, "payload", "ShippingAddress"), ()]), label="where")
        try:
            paths = [(*root, *p) for p in _paths(_at(doc, root)) if root or p]
        except (KeyError, IndexError, TypeError):   # an earlier mutation took it away
            paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent, key = _at(doc, path[:-1]), path[-1]
        action = data.draw(st.sampled_from(["drop", "replace", "amount", "currency", "copy"]), label="action")
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = data.draw(_VALUES, label="value")
        elif action == "copy":     # the same piece twice: a duplicated order, item or page
            if isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
        else:
            monies = [p for p in _paths(doc) if isinstance(_at(doc, p), dict) and "CurrencyCode" in _at(doc, p)]
            if monies:
                m = _at(doc, data.draw(st.sampled_from(monies), label="money"))
                if action == "amount":
                    m["Amount"] = data.draw(st.sampled_from(["-1.00", "99999999999999999999", "0.005", "1,00",
                                                             "12.3456", "10000000000.00"]), label="amount")
                else:
                    m["CurrencyCode"] = data.draw(st.sampled_from(["EUR", "usd", "XXX", "", "JPY"]), label="code")
    results = AmazonChannel().parse(body(doc))
    assert results
    for r in results:
        assert (r.order is None) != (r.error is None), r
        assert r.error is None or isinstance(r.error, str)
