"""The CSV channel: a spreadsheet's orders, one row per line, read exactly, every error naming its row and column."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from oms_engine import NOT_KEPT, CanonicalOrder
from oms_engine.engine import OMS
from oms_engine.orders.canonical import MAX_EXTENSION_BYTES as EXTENSION_BYTES
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Order, RawPayload
from oms_engine.web.app import create_app
from oms_plugins.channels import csv_orders
from oms_plugins.channels.csv_orders import CsvChannel, letter
from tests.support import ROOT, build_oms, order_json, payload
from tests.support.cli import Cli
from tests.support.web import TOKENS, ApiServer

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "orders.csv"
SAMPLES = ROOT.parent / "shared" / "samples"
DOC = ROOT / "docs" / "channels" / "csv.md"

HEADER = ["order_id", "currency", "customer_ref", "ship_country", "freight", "total", "payment_amount", "status",
          "line_sku", "line_quantity", "line_unit_price"]


def table(*rows: list[str] | dict[str, str], header: list[str] | None = None) -> bytes:
    """A CSV file of ``rows`` (a dict fills the columns it names, the rest empty) under ``header``."""
    header = header or HEADER
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(header)
    for row in rows:
        out.writerow([row.get(h, "") for h in header] if isinstance(row, dict) else row)
    return buf.getvalue().encode()


def row(order_id: str = "1", sku: str = "TEA-1", quantity: str = "1", price: str = "59.00", **more: str
        ) -> dict[str, str]:
    return {"order_id": order_id, "currency": "CNY", "customer_ref": "C-OLD", "ship_country": "CN",
            "freight": "10.00", "line_sku": sku, "line_quantity": quantity, "line_unit_price": price, **more}


def parse(raw: bytes) -> list[Any]:
    return CsvChannel().parse(raw)


def parse_one(raw: bytes) -> CanonicalOrder:
    [parsed] = parse(raw)
    assert parsed.error is None, parsed.error
    assert parsed.order is not None
    return parsed.order


def parse_error(raw: bytes) -> str:
    [parsed] = parse(raw)
    assert parsed.order is None and parsed.error
    return str(parsed.error)


def col(name: str, header: list[str] | None = None) -> str:
    """``name (column X)`` as an error names a column of ``header``."""
    return f"{name} (column {letter((header or HEADER).index(name))})"


def count(oms: OMS, model: Any) -> int:
    with oms.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# -- the sample, field by field -----------------------------------------------------------------------------------
def test_the_sample_is_read_field_by_field() -> None:
    first, second, third = parse(SAMPLE.read_bytes())     # a BOM, CRLF, a quoted note with a comma and a break
    assert [p.external_id for p in (first, second, third)] == ["1001", "1002", "1003"]
    assert all(p.error is None for p in (first, second, third))
    one, two, three = first.order, second.order, third.order

    assert (one.channel, one.external_id, one.currency) == ("csv", "1001", "CNY")
    assert one.placed_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)       # +08:00, kept in UTC
    assert one.customer.model_dump() == {"ref": "C-OLD", "name": "Li Lei", "email": "li@example.com",
                                         "phone": "13800000000", "level": "regular", "language": "",
                                         "preferred_medium": "", "app_user": ""}
    assert one.ship_to.model_dump() == {"name": "Li Lei", "phone": "13800000000", "country": "CN",
                                        "region": "Shanghai", "city": "Shanghai", "district": "Pudong",
                                        "line1": "1 Century Avenue", "line2": "Flat 1001", "postcode": "200120"}
    assert (one.freight, one.tax, one.coupon, one.gift_card, one.points, one.declared_total) == (1000, 0, 0, 0, 0,
                                                                                                 16700)
    assert one.payment is not None
    assert (one.payment.transaction_id, one.payment.amount, one.payment.method) == ("PAY-1001", 16700, "alipay")
    assert one.payment.paid_at == datetime(2026, 11, 20, 1, 31, 5, tzinfo=UTC)    # "2026-11-20 09:31:05+08:00"
    assert (one.channel_status, one.order_type, one.note, one.cancelled, one.refunded) == ("paid", "", "", False, 0)
    assert one.extensions == {"Tags": "vip, spring sale"}                  # an order column of the shop's own
    tea, mug = one.lines
    assert (tea.sku, tea.quantity, tea.unit_price, tea.name, tea.channel_line_id) == ("TEA-1", 2, 5900,
                                                                                      "Longjing tea 250 g", "L1")
    assert (mug.sku, mug.quantity, mug.unit_price, mug.channel_line_id) == ("MUG-1", 1, 3900, "L2")
    assert (tea.extensions, mug.extensions) == ({}, {"line_gift_wrap": "yes"})   # a line column of its own
    assert tea.promotions == () and mug.promotions == ()

    # no customer_ref: the e-mail address, lower-cased; no ship_name or ship_phone: the customer's
    assert two.customer.ref == "han.mei@example.com" and two.customer.email == "Han.Mei@Example.com"
    assert (two.ship_to.name, two.ship_to.phone, two.ship_to.city) == ("Han Mei", "13900000002", "Beijing")
    assert two.placed_at == datetime(2026, 11, 20, 10, 2, tzinfo=UTC)
    assert two.note == "Ring twice,\nthen leave it with the porter"
    assert (two.freight, two.declared_total, two.coupon) == (0, 8200, 0)       # "0.00": free, not "not given"
    # paid by bank transfer with no reference: a stand-in, the same on every import
    assert two.payment is not None
    assert (two.payment.transaction_id, two.payment.amount, two.payment.method) == ("csv:1002", 8200, "bank transfer")
    assert two.payment.paid_at is None
    [ice] = two.lines
    assert (ice.sku, ice.quantity, ice.unit_price) == ("ICE-1", 3, 2900)
    assert [p.model_dump() for p in ice.promotions] == [{"code": "WELCOME5", "name": "", "kind": "coupon",
                                                         "amount": 500}]
    assert two.extensions == {}

    # order columns on the first row only, as an export writes them; no freight, price or payment given
    assert three.customer.ref == "C-42" and three.ship_to.region == "Guangdong"
    assert (three.freight, three.declared_total, three.payment, three.channel_status) == (None, None, None, "pending")
    pen, tea3 = three.lines
    assert (pen.sku, pen.quantity, pen.unit_price) == ("PEN-1", 10, None)   # the catalogue's price
    assert (tea3.sku, tea3.quantity, tea3.unit_price, tea3.channel_line_id) == ("TEA-1", 1, 5900, "L5")


# -- through intake, on both backends -----------------------------------------------------------------------------
def test_the_sample_is_stored_once_however_often_it_comes(oms: OMS) -> None:
    raw = SAMPLE.read_bytes()
    results = oms.intake.ingest("csv", raw, source="orders.csv")
    assert [(r.external_id, r.status, r.error) for r in results] == [("1001", "paid", None), ("1002", "paid", None),
                                                                     ("1003", "on_hold", None)]
    with oms.db.session() as s:
        one, two, three = (explain(s, r.number) for r in results)
    assert (one["channel"], one["external_id"], one["customer"], one["placed_at"]) == ("csv", "1001", "C-OLD",
                                                                                       "2026-11-20T01:30:00")
    assert one["amounts"] == {"goods": 15700, "freight": 1000, "tax": 0, "coupon": 0, "gift_card": 0, "points": 0,
                              "payable": 16700, "paid_amount": 16700, "refund_amount": 0}
    [paid] = one["payments"]
    assert (paid["amount"], paid["provider_ref"], paid["method_detail"]) == (16700, "PAY-1001", "alipay")
    assert [(ln["channel_sku"], ln["quantity"], ln["unit_price"], ln["name"]) for ln in one["lines"]] == [
        ("TEA-1", 2, 5900, "Longjing tea 250 g"), ("MUG-1", 1, 3900, "Tea mug")]
    assert one["lines"][1]["extensions"] == {"line_gift_wrap": "yes"}
    assert one["channel_fields"] == {"order_type": "", "channel_status": "paid",
                                     "extensions": {"Tags": "vip, spring sale"}}
    assert one["ship_to"]["line1"] == "1 Century Avenue" and one["hold_reason"] is None
    # the line's discount is its promotion, and the order's coupon their sum
    assert two["amounts"]["coupon"] == 500 and two["amounts"]["payable"] == two["amounts"]["paid_amount"] == 8200
    assert two["lines"][0]["discount"] == 500 and two["customer"] == "han.mei@example.com"
    # no freight in the file: the OMS's own charge is due, and the test world has no freight template for it
    assert three["amounts"]["goods"] == 10 * 500 + 5900 and three["amounts"]["paid_amount"] == 0
    assert "no active freight template" in three["hold_reason"]

    again = oms.intake.ingest("csv", raw, source="orders.csv")
    assert [(r.number, r.duplicate, r.content_differs) for r in again] == [(r.number, True, False) for r in results]
    assert count(oms, Order) == 3
    assert count(oms, RawPayload) == 2            # each file kept as it came


def test_a_fixed_file_imported_again_adds_only_what_was_refused(sqlite_oms: OMS) -> None:
    bad = table(row("1"), row("2", price="59.005"))
    first, second = sqlite_oms.intake.ingest("csv", bad)
    assert first.number and first.error is None
    assert second.number is None and second.error == (
        f"row 3, {col('line_unit_price')}: '59.005' has more decimals than CNY allows (2)")
    one, two = sqlite_oms.intake.ingest("csv", table(row("1"), row("2")))
    assert one.duplicate and one.number == first.number and one.content_differs is False
    assert two.number and not two.duplicate
    assert count(sqlite_oms, Order) == 2


@pytest.fixture
def any_cli(tmp_path: Path, db_url: str) -> Cli:
    """The real ``oms`` command on a seeded database of each backend."""
    build_oms(tmp_path, db_url).close()
    return Cli(tmp_path, db_url)


def test_oms_ingest_takes_the_file_in_once(any_cli: Cli) -> None:
    first = json.loads(any_cli("ingest", "--channel", "csv", str(SAMPLE), "--json").stdout)
    assert [(r["external_id"], r["status"], r.get("duplicate", False)) for r in first] == [
        ("1001", "paid", False), ("1002", "paid", False), ("1003", "on_hold", False)]
    again = any_cli("ingest", "--channel", "csv", str(SAMPLE))
    assert again.stdout.splitlines() == [f"{r['external_id']}: {r['number']} {r['status']} (already received)"
                                         for r in first]
    oms = any_cli.oms()
    try:
        assert count(oms, Order) == 3
        with oms.db.session() as s:
            assert sorted(s.scalars(select(Order.external_id).where(Order.channel == "csv"))) == ["1001", "1002",
                                                                                                  "1003"]
    finally:
        oms.close()


# -- docs/channels/csv.md ----------------------------------------------------------------------------------------
def doc_blocks() -> tuple[str, list[str]]:
    page = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", page, re.S | re.M)
    [example] = [body for lang, body in blocks if lang == "csv"]
    [errors] = [body for lang, body in blocks if ": error row" in body]
    return example, errors.splitlines()


def test_the_documented_example_and_its_errors(cli: Cli) -> None:
    example, errors = doc_blocks()
    path = cli.tmp_path / "orders.csv"
    path.write_text(example, encoding="utf-8")
    taken = cli("ingest", "--channel", "csv", str(path))
    assert [ln.split(" ")[0] + " " + ln.split(" ")[2] for ln in taken.stdout.splitlines()] == ["A-1001: paid",
                                                                                              "A-1002: paid"]
    order = parse(example.encode())[0].order
    assert order is not None and order.note == "Ring twice, then leave it with the porter"
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [("TEA-1", 2), ("MUG-1", 1)]
    # the errors the page shows: A-1002's price with a decimal too many, and an order A-1003 with 1.5 units
    assert "ICE-1,3,29.00," in example
    lines = example.splitlines()
    bad = [*lines[:3], lines[3].replace("A-1002", "A-1004").replace("ICE-1,3,29.00,", "ICE-1,3,29.005,"),
           lines[3].replace("A-1002", "A-1003").replace("ICE-1,3,29.00,", "TEA-1,1.5,59.00,")]
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    failed = cli("ingest", "--channel", "csv", str(path), ok=False)
    assert failed.stderr.splitlines() == [e.replace("A-1002", "A-1004") for e in errors]


# -- rows and orders ------------------------------------------------------------------------------------------------
def test_an_orders_columns_may_be_repeated_or_given_once() -> None:
    repeated = parse_one(table(row("1", "TEA-1", "2"), row("1", "MUG-1", "1", "39.00")))
    once = parse_one(table(row("1", "TEA-1", "2"), {"order_id": "1", "line_sku": "MUG-1", "line_quantity": "1",
                                                    "line_unit_price": "39.00"}))
    assert repeated == once
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in once.lines] == [("TEA-1", 2, 5900), ("MUG-1", 1, 3900)]


def test_an_orders_columns_that_disagree_are_an_error_naming_the_rows() -> None:
    error = parse_error(table(row("1", status="paid"), row("1", status="pending"), row("1")))
    assert error == f"{col('status')}: 'paid' on row 2 but 'pending' on row 3: an order's columns must be the same " \
                    "on all its rows (or left empty)"
    # an extension column is an order column like any other
    header = [*HEADER, "Tags"]
    error = parse_error(table(row("1", Tags="a"), row("1", Tags="b"), header=header))
    assert error.startswith(f"{col('Tags', header)}: 'a' on row 2 but 'b' on row 3")


def test_the_rows_of_one_order_must_be_together() -> None:
    one, two = parse(table(row("1"), row("2"), row("1", "MUG-1", "1", "39.00"), row("3")))[:2]
    assert one.external_id == "1" and one.order is None
    assert one.error == (f"{col('order_id')}: the order's rows are not together: row 2, then again at row 4 after "
                         "other orders' rows; keep an order's rows one after another (sort the sheet by order_id)")
    assert two.order is not None and two.external_id == "2"
    # three results: the scattered order once, at its first place, and the others
    assert [p.external_id for p in parse(table(row("1"), row("2"), row("1"), row("3")))] == ["1", "2", "3"]


def test_a_row_without_an_order_id_fails_the_orders_either_side() -> None:
    results = parse(table(row("1"), row("2"), row(""), row("3"), row("4")))
    assert [(p.external_id, p.order is not None) for p in results] == [("1", True), ("2", False), (None, False),
                                                                       ("3", False), ("4", True)]
    assert results[2].error == f"row 4, {col('order_id')}: empty: every row names the order it is a line of"
    assert results[1].error == "row 4, next to this order's rows, has no order_id: it may be a line of this order"
    assert results[3].error == results[1].error


def test_a_row_without_an_order_id_among_one_orders_rows_fails_that_order_once() -> None:
    first, orphan, second = parse(table(row("1"), row(""), row("1"), row("2")))
    assert first.external_id == "1" and first.error == ("row 3, next to this order's rows, has no order_id: it may "
                                                        "be a line of this order")
    assert orphan.error and orphan.external_id is None
    assert second.order is not None                 # not next to the row without an id


def test_a_repeated_header_is_said_and_parts_no_order_across_it() -> None:
    one, repeated, two = parse(table(row("1"), HEADER, row("1", "MUG-1", price="39.00"), row("2")))
    assert repeated.error == "row 3 repeats the header (two exports pasted into one file?): delete it"
    assert one.external_id == "1" and "the order's rows are not together: row 2, then again at row 4" in one.error
    assert two.order is not None


def test_empty_rows_are_skipped_and_short_rows_read_as_empty_cells() -> None:
    raw = table(row("1"), [""] * len(HEADER), [], row("2")) + b"3,CNY,C-OLD,CN,,,,,TEA-1,2\n"
    results = parse(raw)
    assert [(p.external_id, p.error) for p in results] == [("1", None), ("2", None), ("3", None)]
    assert results[2].order is not None and results[2].order.lines[0].unit_price is None


def test_header_names_are_matched_loosely_and_checked() -> None:
    header = ["Order ID", " CURRENCY ", "line-sku", "Line Quantity"]
    order = parse_one(table(["A", "CNY", "TEA-1", "3"], header=header))
    assert (order.external_id, order.lines[0].sku, order.lines[0].quantity) == ("A", "TEA-1", 3)
    error = parse_error(table(["A", "CNY", "TEA-1"], header=["order_id", "currency", "line_sku"]))
    assert error == "row 1: the required column line_quantity is missing"
    error = parse_error(table(["A", "CNY", "TEA-1", "1", "x"], header=[*header, "Order_ID"]))
    assert error == "row 1, column E: 'Order_ID' is the same column as column A"
    error = parse_error(table(["A", "CNY", "TEA-1", "1", "9.00"], header=[*header, "line_price"]))
    assert error == ("row 1, column E: unknown column 'line_price': did you mean line_unit_price? (rename it if it "
                     "is a field of your own)")
    assert "did you mean freight?" in parse_error(table(["A", "CNY", "TEA-1", "1", "9"], header=[*header, "frieght"]))


def test_a_value_under_no_column_is_an_error_of_its_row() -> None:
    header = ["order_id", "currency", "", "line_sku", "line_quantity"]
    assert parse_one(table(["A", "CNY", "", "TEA-1", "1", ""], header=header)).lines[0].sku == "TEA-1"
    assert parse_error(table(["A", "CNY", "x", "TEA-1", "1"], header=header)) == (
        "row 2, column C: 'x' is under no column name (the header names none there)")
    assert parse_error(table(["A", "CNY", "", "TEA-1", "1", "y"], header=header)) == (
        "row 2, column F: 'y' is under no column name (the header names none there)")


# -- values --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cells", "column", "message"), [
    ({"line_unit_price": "59.005"}, "line_unit_price", "'59.005' has more decimals than CNY allows (2)"),
    ({"line_unit_price": "1,234.00"}, "line_unit_price", "'1,234.00' is not a decimal amount"),
    ({"line_unit_price": "-1.00"}, "line_unit_price", "'-1.00' is negative; amounts are 0 or more"),
    ({"line_unit_price": "¥59"}, "line_unit_price", "'¥59' is not a decimal amount"),
    ({"freight": "1e3"}, "freight", "'1e3' is not a decimal amount"),
    ({"total": "0.001"}, "total", "'0.001' has more decimals than CNY allows (2)"),
    ({"line_quantity": "0"}, "line_quantity", "a whole number from 1 to 100,000 is required, not '0'"),
    ({"line_quantity": "1.5"}, "line_quantity", "a whole number from 1 to 100,000 is required, not '1.5'"),
    ({"line_quantity": "100001"}, "line_quantity", "a whole number from 1 to 100,000 is required, not '100001'"),
    ({"line_quantity": "٣"}, "line_quantity", "a whole number from 1 to 100,000 is required, not '٣'"),
    ({"line_quantity": ""}, "line_quantity", "a whole number from 1 to 100,000 is required, not ''"),
    ({"line_sku": ""}, "line_sku", "required: the SKU of the line"),
    ({"currency": "cny"}, "currency", "'cny' is not an ISO 4217 code"),
    ({"ship_country": "China"}, "ship_country", "'China' is not an ISO 3166-1 alpha-2 country code"),
    ({"line_sku": "S" * 65}, "line_sku", "String should have at most 64 characters"),
    ({"order_id": "9" * 129}, "order_id", "String should have at most 128 characters"),
    ({"customer_ref": "C\x01"}, "customer_ref", "contains U+0001 (a control character)"),
])
def test_errors_name_the_row_and_the_column(cells: dict[str, str], column: str, message: str) -> None:
    first, second = parse(table(row("1"), {**row("2"), **cells}))
    assert first.order is not None                      # one bad order never stops the rest
    assert second.order is None and second.error.startswith(f"row 3, {col(column)}: {message}"), second.error


def test_a_wrong_currency_is_said_once_and_its_amounts_not_read() -> None:
    assert parse_error(table(row("1", currency="XYZ"))) == f"row 2, {col('currency')}: XYZ is not an active ISO " \
                                                           "4217 currency"


def test_other_currencies_keep_their_own_decimals() -> None:
    assert parse_one(table(row("1", currency="JPY", price="5900", freight="0"))).lines[0].unit_price == 5900
    assert "more decimals than JPY allows (0)" in parse_error(table(row("1", currency="JPY", price="59.50")))
    assert parse_one(table(row("1", currency="KWD", price="1.250", freight="0.500"))).freight == 500


def test_times_need_their_offset() -> None:
    header = [*HEADER, "placed_at"]
    order = parse_one(table(row("1", placed_at="2026-11-20 09:30:00+08:00"), header=header))
    assert order.placed_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    error = parse_error(table(row("1", placed_at="2026-11-20 09:30:00"), header=header))
    assert error == (f"row 2, {col('placed_at', header)}: '2026-11-20T09:30:00' has no time-zone offset: add Z (UTC) "
                     "or the offset, e.g. +08:00")
    assert parse_error(table(row("1", placed_at="20/11/2026"), header=header)).startswith(
        f"row 2, {col('placed_at', header)}: '20/11/2026' is not an RFC 3339 date-time")


def test_payments_cancellation_and_the_rest_of_the_order_columns() -> None:
    header = [*HEADER, "payment_id", "payment_method", "paid_at", "cancelled", "refunded", "coupon", "tax",
              "gift_card", "gift_card_code", "points", "order_type", "deliver_from", "deliver_by", "line_name",
              "line_id", "line_discount", "line_discount_code", "customer_email"]
    order = parse_one(table(row("1", quantity="2", payment_amount="100.00", payment_id="T-1", payment_method="cod",
                                cancelled="Yes", refunded="5.00", coupon="3.00", tax="1.20", gift_card="2.00",
                                gift_card_code="GC-1", points="1.00", order_type="phone",
                                deliver_from="2026-11-21T09:00:00+08:00", deliver_by="2026-11-21T18:00:00+08:00",
                                line_name="Tea", line_id="7", line_discount="3.00"), header=header))
    assert order.payment is not None and (order.payment.transaction_id, order.payment.method) == ("T-1", "cod")
    assert (order.cancelled, order.refunded, order.coupon, order.tax, order.gift_card, order.points) == (
        True, 500, 300, 120, 200, 100)
    assert (order.gift_card_code, order.order_type) == ("GC-1", "phone")
    assert order.deliver_by == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    [line] = order.lines
    assert (line.name, line.channel_line_id) == ("Tea", "7")
    assert [p.model_dump() for p in line.promotions] == [{"code": "", "name": "", "kind": "discount", "amount": 300}]
    assert order.customer.ref == "C-OLD"
    # an unpaid order has no payment; an amount without an id gets the stand-in; an id alone is an error
    assert parse_one(table(row("1"))).payment is None
    error = parse_error(table(row("1", payment_id="T-1"), header=header))
    assert error == f"row 2, {col('payment_amount', header)}: required with a payment_id: what was paid, e.g. " \
                    '"123.00"'
    error = parse_error(table(row("1", paid_at="2026-11-20T09:30:00Z"), header=header))
    assert error == f"row 2, {col('payment_amount', header)}: required with payment_method or paid_at: what was paid"
    error = parse_error(table(row("1", cancelled="maybe"), header=header))
    assert error == f"row 2, {col('cancelled', header)}: 'maybe' is not true or false (yes or no, 1 or 0)"
    error = parse_error(table(row("1", line_discount_code="X"), header=header))
    assert error.startswith(f"row 2, {col('line_discount', header)}: required with the line_discount_code 'X'")
    error = parse_error(table(row("1", deliver_from="2026-11-22T09:00:00Z", deliver_by="2026-11-21T09:00:00Z"),
                              header=header))
    assert error == "row 2: deliver_from 2026-11-22T09:00:00+00:00 is after deliver_by 2026-11-21T09:00:00+00:00"
    # a guest without an e-mail address: a customer of the order's own
    assert parse_one(table({**row("9"), "customer_ref": ""})).customer.ref == "csv:guest:9"


def test_an_order_of_more_lines_than_the_oms_takes_names_its_rows() -> None:
    error = parse_error(table(*[row("1") for _ in range(501)]))
    assert error == "rows 2-502: lines: an order has 1 to 500 lines, not 501"


def test_extra_columns_are_kept_within_the_models_bound() -> None:
    header = [*HEADER, "Vendor", "line_vendor", "big", "X" * 70]
    order = parse_one(table(row("1", Vendor="Acme", line_vendor="Tea Co", big="b" * 20_000, **{"X" * 70: "x"}),
                            header=header))
    assert order.extensions["Vendor"] == "Acme" and order.lines[0].extensions == {"line_vendor": "Tea Co"}
    assert "big" not in order.extensions
    notes = order.extensions[NOT_KEPT]
    assert notes[0].startswith("'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'...: the name is not 1 to 64")
    assert notes[1].startswith("big: 20,010 bytes, past the 16,384 the order keeps")
    assert notes[-1] == "all of it is in the raw payload"
    assert len(json.dumps(order.extensions, ensure_ascii=False, separators=(",", ":")).encode()) <= EXTENSION_BYTES


# -- what is not a CSV order file ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "what"), [
    ((SAMPLES / "shopify" / "order.json").read_bytes(), "not a CSV order file: it is JSON (another channel's payload?"),
    ((SAMPLES / "woocommerce" / "orders.json").read_bytes(), "not a CSV order file: it is JSON"),
    ((SAMPLES / "amazon" / "orders.json").read_bytes(), "not a CSV order file: it is JSON"),
    (payload(order_json("A-1")), "not a CSV order file: it is JSON"),
    (b"PK\x03\x04\x14\x00\x06\x00", "not a CSV order file: it is a zip archive, such as an Excel workbook (.xlsx)"),
    ("order_id,currency\n".encode("utf-16"), "not a CSV order file: it is UTF-16 text"),
    (b"", "not a CSV order file: it is empty"),
    (b"\xef\xbb\xbf\r\n", "not a CSV order file: it is empty"),
    (b"order_id;currency;line_sku;line_quantity\n1;CNY;TEA-1;1\n",
     "not a CSV order file: its header (row 1) has no order_id column (its header has no comma: is it separated by "
     "semicolons or tabs? export it comma separated)"),
    (b"Name,Email,Lineitem sku\n#1001,a@b.c,X\n", "not a CSV order file: its header (row 1) has no order_id column; "
                                                  "it has 'Name', 'Email', 'Lineitem sku'; expected a CSV order file"),
])
def test_what_is_not_a_csv_order_file_is_refused_whole(sqlite_oms: OMS, raw: bytes, what: str) -> None:
    results = sqlite_oms.intake.ingest("csv", raw)
    assert len(results) == 1 and results[0].number is None and results[0].error.startswith(what), results
    assert count(sqlite_oms, Order) == 0 and count(sqlite_oms, RawPayload) == 1


def test_a_header_without_orders_says_so() -> None:
    assert parse_error(table()) == "the file has a header but no orders (no rows after row 1)"


def test_bytes_that_are_not_utf8_are_named_by_row_and_column() -> None:
    raw = table(row("1"), row("2", customer_ref="X")).replace(b",X,", b",Caf\xe9,")
    first, second = parse(raw)
    assert first.order is not None
    assert second.error == (f"row 3, {col('customer_ref')}: not UTF-8 (byte 0xE9): save the file as \"CSV UTF-8\"")
    assert parse_error(b"order_id,caf\xe9\n") == ("row 1, column B: the name is not UTF-8 (byte 0xE9): save the file "
                                                  "as \"CSV UTF-8\"")


def test_malformed_quoting_refuses_the_file() -> None:
    raw = table(row("1")) + b'2,CNY,"C-OLD"x,CN,,,,,TEA-1,1,\n' + table(row("3")).split(b"\n", 1)[1]
    assert parse_error(raw) == ("row 3 (line 3 of the file): malformed CSV (',' expected after '\"'): a quoted cell "
                                "must end with a quote followed by a comma or the end of the line, and a quote inside "
                                "it is written twice (\"\"); nothing of the file is taken in: fix it and import it "
                                "again")
    assert parse_error(table(row("1")) + b'2,"CNY\n').startswith("row 3 (line 3 of the file): malformed CSV "
                                                                  "(unexpected end of data)")


def test_the_row_and_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_orders, "MAX_ROWS", 3)
    assert len(parse(table(row("1"), row("2"), row("3")))) == 3
    assert parse_error(table(row("1"), row("2"), row("3"), row("4"))) == (
        "the file has more than 3 rows of orders: split it into files of at most 3 rows, each with the header")
    monkeypatch.setattr(csv_orders, "MAX_BYTES", 100)
    assert parse_error(table(row("1"), row("2"))).startswith("the file has 1")
    assert parse_error(table(row("1"), row("2"))).endswith("bytes, more than the 100 a payload may have: split it "
                                                           "into smaller files")
    assert parse_error(b"order_id," * 300 + b"\n").startswith("the file has")


def test_too_many_columns() -> None:
    header = ["order_id", "currency", "line_sku", "line_quantity", *(f"c{i}" for i in range(253))]
    assert parse_error(table(header=header)) == "row 1: 257 columns, more than the 256 a CSV order file may have"


def test_spreadsheet_letters() -> None:
    assert [letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]


# -- no webhooks ---------------------------------------------------------------------------------------------------
def test_the_channel_takes_no_webhooks(sqlite_oms: OMS, serve: Callable[..., ApiServer],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    channel = CsvChannel()
    assert channel.webhooks is False
    assert channel.verify({"X-OMS-Signature": "sha256=00"}, SAMPLE.read_bytes(), "secret") is False
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_CSV", "secret")
    api = serve(create_app(sqlite_oms, tokens=TOKENS))
    r = api.post("/api/webhooks/csv", body=SAMPLE.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status == 404 and "takes no webhooks" in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == 0


# -- fuzzing: whatever comes, an order or an error --------------------------------------------------------------------
ODD = ["", " ", "0", "-1", "1.5", "59.001", "1e3", "NaN", "٣", "\x00", "\x01", "\u202e", "x" * 300, '"', '""', ",",
       "\n", "\r\n", "CNY", "cny", "TEA-1", "2026-11-20T09:30:00Z", "2026-02-30 25:00:00+08:00", "yes", "maybe",
       "99999999999999999999999.99", "\ufeff", "order_id", "1001", "1002"]


def _records() -> list[list[str]]:
    return list(csv.reader(io.StringIO(SAMPLE.read_bytes().decode("utf-8-sig"), newline="")))


def _written(records: list[list[str]]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(records)
    return buf.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    records = [list(r) for r in _records()]
    for _ in range(draw(st.integers(1, 5))):
        action = draw(st.sampled_from(["cell", "text", "drop", "copy", "swap", "cut"]))
        r = draw(st.integers(0, len(records) - 1)) if records else 0
        if not records:
            break
        if action in ("cell", "text") and records[r]:
            c = draw(st.integers(0, len(records[r]) - 1))
            records[r][c] = draw(st.sampled_from(ODD)) if action == "cell" else draw(st.text(max_size=40))
        elif action == "drop":
            del records[r]
        elif action == "copy":
            records.insert(draw(st.integers(0, len(records))), list(records[r]))
        elif action == "swap":
            s = draw(st.integers(0, len(records) - 1))
            records[r], records[s] = records[s], records[r]
        elif action == "cut" and records[r]:
            records[r] = records[r][:draw(st.integers(0, len(records[r])))]
    raw = _written(records)
    if draw(st.booleans()):
        # and sometimes bytes broken where the CSV writer would never break them
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b'"', b"\xe9", b"\x00", b"\r", b",", b"\xef\xbb\xbf", b"{"])) + raw[at:]
    return raw


def _check(results: list[Any]) -> None:
    assert results
    for r in results:
        assert (r.order is None) != (r.error is None), r
        if r.order is not None:
            assert isinstance(r.order, CanonicalOrder) and r.order.channel == "csv"
            assert r.external_id == r.order.external_id
        else:
            assert isinstance(r.error, str) and r.error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parse_never_raises_on_mutated_files(raw: bytes) -> None:
    _check(parse(raw))


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_parse_never_raises_on_any_bytes(raw: bytes) -> None:
    _check(parse(raw))


@pytest.fixture
def fuzz_oms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OMS]:
    path = tmp_path_factory.mktemp("fuzz")
    o = build_oms(path, f"sqlite:///{path / 'oms.db'}")
    yield o
    o.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=mutated())
def test_intake_of_mutated_files_stores_an_order_or_says_why(fuzz_oms: OMS, raw: bytes) -> None:
    # One OMS for every example: what an earlier one stored makes a later one's order a duplicate or an update,
    # which must be answered too.
    results = fuzz_oms.intake.ingest("csv", raw)
    assert results
    for r in results:
        assert (r.number is None) != (r.error is None), r
