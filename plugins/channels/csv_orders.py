"""The CSV channel: orders exported from a spreadsheet or a small shop system, imported as a batch.

``oms ingest --channel csv orders.csv``. The file is UTF-8 (a byte-order mark is allowed: Excel's "CSV UTF-8"
writes one), comma separated, RFC 4180 quoting, with a header row. As in Shopify's order export, there is one row
per order *line*: the order's own columns are on each of its rows, and its rows are grouped by ``order_id``.
docs/channels/csv.md lists the columns; in short:

* required: ``order_id``, ``currency``, ``line_sku``, ``line_quantity``; every other known column is optional.
  Header names are matched ignoring case, with spaces and hyphens read as ``_`` ("Order ID" is ``order_id``);
* the rows of one order are consecutive. An id found again after another order's rows is an error naming
  both places, not a merge: two exports pasted together, whose shop numbers its orders from 1 again, would
  otherwise become one order. (Sort the sheet by ``order_id`` first.);
* an order column on a later row of the order is either empty or the same as on the others; two different
  values are an error naming the rows. So both a sheet that repeats the order on every row and an export that
  fills it on the first row only are read;
* money is decimal text ("129.90") in minor units of the order's currency, exactly: more decimals than the
  currency has is an error, never rounded; quantities are whole numbers from 1 to 100,000;
* a column the OMS does not know is kept as the channel's own field: named ``line_...``, in its line's
  extensions, any other in the order's (and it must agree across the order's rows like any order column). A
  name close to a known one ("line_price") is refused as a likely typo, since an ignored ``freight`` would
  change what the customer is charged.

Every error names the row as a spreadsheet numbers it (the header is row 1; a cell with line breaks in it is
still one row) and the column by its name and letter: ``row 4, line_unit_price (column M): ...``. An order with
an error is refused with all its errors, and the other orders of the file go on. Three things refuse the whole
file, since it cannot be split into orders safely: a header that is not this format's (another channel's
JSON, an Excel workbook, a file without ``order_id``), malformed CSV quoting (the rows after it cannot be told
apart), and a file past the limits (:data:`MAX_ROWS` rows, :data:`MAX_COLUMNS` columns, 5 MB). A row without an
order id fails the orders either side of it as well: it may be a line of either. A row that repeats the header
(two exports pasted together) is an error of its own, and an order id on both sides of it is two places.

Files come by ``oms ingest`` only: the channel takes no webhooks (``webhooks = False``; ``verify`` is False).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from oms_engine import CanonicalOrder, ParsedPayload, fit_extensions, hookimpl

NAME = "csv"

# The intake's own bound on a payload (oms_engine/orders/intake.py), mirrored because a plugin imports only the
# public API; checked here too so that parse() called on its own is bounded the same way.
MAX_BYTES = 5 * 1024 * 1024
# Rows of orders (the header not counted). At the 200 to 300 bytes of a typical row, 5 MB holds about this many;
# a larger export is split into several files.
MAX_ROWS = 20_000
MAX_COLUMNS = 256
MAX_QUANTITY = 100_000                  # CanonicalLine.quantity
MAX_ERRORS = 20                         # per order: the intake keeps 2,000 characters of an error

# Order columns: the column, and the canonical field it fills (for naming the column in the model's errors).
ORDER_COLUMNS: dict[str, str] = {
    "order_id": "external_id", "currency": "currency", "placed_at": "placed_at",
    "customer_ref": "customer.ref", "customer_name": "customer.name", "customer_email": "customer.email",
    "customer_phone": "customer.phone",
    "ship_name": "ship_to.name", "ship_phone": "ship_to.phone", "ship_country": "ship_to.country",
    "ship_region": "ship_to.region", "ship_city": "ship_to.city", "ship_district": "ship_to.district",
    "ship_line1": "ship_to.line1", "ship_line2": "ship_to.line2", "ship_postcode": "ship_to.postcode",
    "freight": "freight", "tax": "tax", "coupon": "coupon", "gift_card": "gift_card",
    "gift_card_code": "gift_card_code", "points": "points", "total": "declared_total",
    "payment_id": "payment.transaction_id", "payment_amount": "payment.amount", "payment_method": "payment.method",
    "paid_at": "payment.paid_at", "note": "note", "deliver_from": "deliver_from", "deliver_by": "deliver_by",
    "order_type": "order_type", "status": "channel_status", "cancelled": "cancelled", "refunded": "refunded",
}
LINE_COLUMNS: dict[str, str] = {
    "line_sku": "sku", "line_quantity": "quantity", "line_unit_price": "unit_price", "line_name": "name",
    "line_id": "channel_line_id", "line_discount": "promotions", "line_discount_code": "promotions",
}
REQUIRED = ("order_id", "currency", "line_sku", "line_quantity")
KNOWN = (*ORDER_COLUMNS, *LINE_COLUMNS)
_ORDER_MONEY = ("freight", "tax", "coupon", "gift_card", "points", "total", "payment_amount", "refunded")
_TIMES = ("placed_at", "paid_at", "deliver_from", "deliver_by")
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
# A header this close to a known column (difflib's ratio) is taken for a typo of it, not for a field of its own.
_TYPO_CUTOFF = 0.8

_SPACES = re.compile(r"[\s-]+")
_QUANTITY = re.compile(r"[0-9]{1,7}", re.ASCII)
# A spreadsheet's date-time with a space for RFC 3339's "T" (RFC 3339 itself allows it, section 5.6's note).
_SPACED_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:", re.ASCII)
# Bytes that are not UTF-8, as the "surrogateescape" decoding keeps them: U+DC80 to U+DCFF.
_UNDECODED = re.compile("[\udc80-\udcff]")
_KEY_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

EXPECTED = ("expected a CSV order file: UTF-8, comma separated, a header row naming at least the columns "
            "order_id, currency, line_sku and line_quantity, then one row per order line (docs/channels/csv.md)")


def letter(index: int) -> str:
    """The spreadsheet's name of the column at 0-based ``index``: A ... Z, AA ..."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _shown(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit]) + ("..." if len(value) > limit else "")


def _key(name: str) -> str:
    return _SPACES.sub("_", name.strip().lower())


def _derived(prefix: str, order_id: str) -> str:
    """``prefix`` + the order id, within the 128 characters of an id; a longer one by its digest, still the same
    on every import of the order."""
    text = f"{prefix}{order_id}"
    return text if len(text) <= 128 else prefix + hashlib.sha256(order_id.encode("utf-8", "surrogatepass")).hexdigest()



@dataclass
class _Header:
    names: list[str]                 # as written, stripped
    index: dict[str, int]            # known column (normalised) -> its index
    extra_order: list[int]           # columns kept in the order's extensions
    extra_line: list[int]            # columns kept in the line's extensions
    keys: list[str] = field(default_factory=list)                   # the named columns, normalised
    _places: dict[str, str] = field(default_factory=dict)

    def where(self, column: str) -> str:
        """``line_sku (column C)``, or a known column the file lacks by its name alone."""
        place = self._places.get(column)
        if place is None:
            i = self.index.get(column)
            place = self._places[column] = column if i is None else f"{self.names[i]} (column {letter(i)})"
        return place

    def repeated(self, cells: list[str]) -> bool:
        """Whether ``cells`` is this header again."""
        i = self.index["order_id"]
        # The id's cell first: a row of an order is told apart without normalising all its cells.
        return (i < len(cells) and _key(cells[i]) == "order_id"
                and [_key(c) for c in cells if c.strip()] == self.keys)


@dataclass
class _Group:
    order_id: str
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)     # found while grouping (scattered rows, neighbours)
    later: list[int] = field(default_factory=list)      # rows of it found after other orders' rows


def _not_csv(body: bytes) -> str | None:
    """What a payload that is plainly no CSV text is, or None."""
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start:
        return "not a CSV order file: it is empty; " + EXPECTED
    if start[:1] in (b"{", b"["):
        return ("not a CSV order file: it is JSON (another channel's payload? take it in with its own channel, "
                "e.g. --channel json, shopify, woocommerce or amazon); " + EXPECTED)
    if body.startswith(b"PK\x03\x04"):
        return ("not a CSV order file: it is a zip archive, such as an Excel workbook (.xlsx): save the sheet as "
                "\"CSV UTF-8\"; " + EXPECTED)
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "not a CSV order file: it is UTF-16 text: save it as \"CSV UTF-8\"; " + EXPECTED
    if body.startswith(b"\xd0\xcf\x11\xe0"):
        return "not a CSV order file: it is an Excel 97-2003 workbook (.xls): save the sheet as \"CSV UTF-8\"; " \
            + EXPECTED
    return None


def _read_header(cells: list[str]) -> _Header | str:
    """The header row, or why the file is not this format's."""
    # A second byte-order mark (a file converted twice) is no part of the first column's name.
    names = [c.replace("\ufeff", "").strip() for c in cells]
    if len(names) > MAX_COLUMNS:
        return f"row 1: {len(names):,} columns, more than the {MAX_COLUMNS} a CSV order file may have"
    for i, name in enumerate(names):
        found = _UNDECODED.search(name)
        if found:
            return (f"row 1, column {letter(i)}: the name is not UTF-8 (byte 0x{ord(found.group()) - 0xDC00:02X}): "
                    "save the file as \"CSV UTF-8\"")
    keys = [_key(n) for n in names]
    if "order_id" not in keys:
        hint = ""
        if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
            hint = " (its header has no comma: is it separated by semicolons or tabs? export it comma separated)"
        shown = ", ".join(_shown(n, 30) for n in names[:6]) + (", ..." if len(names) > 6 else "") or "no names"
        return f"not a CSV order file: its header (row 1) has no order_id column{hint}; it has {shown}; " + EXPECTED
    problems: list[str] = []
    index: dict[str, int] = {}
    first_at: dict[str, int] = {}
    extra_order: list[int] = []
    extra_line: list[int] = []
    for i, (name, key) in enumerate(zip(names, keys, strict=True)):
        if not name:
            continue            # a column with no name: its cells must be empty (checked per row)
        if key in first_at:
            problems.append(f"row 1, column {letter(i)}: {_shown(name)} is the same column as column "
                            f"{letter(first_at[key])}")
            continue
        first_at[key] = i
        if key in KNOWN:
            index[key] = i
            continue
        close = difflib.get_close_matches(key, KNOWN, n=1, cutoff=_TYPO_CUTOFF)
        if close:
            problems.append(f"row 1, column {letter(i)}: unknown column {_shown(name)}: did you mean {close[0]}? "
                            "(rename it if it is a field of your own)")
        elif key.startswith("line_"):
            extra_line.append(i)
        else:
            extra_order.append(i)
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        problems.append(f"row 1: the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"{'are' if len(missing) > 1 else 'is'} missing")
    if problems:
        return "; ".join(problems)
    return _Header(names, index, extra_order, extra_line, [k for k in keys if k])


class _Reader:
    """One order's rows read into the canonical order's fields; every problem is kept, named by row and column."""

    def __init__(self, header: _Header, group: _Group) -> None:
        self.h = header
        self.group = group
        self.order_id = group.order_id
        self.errors: list[str] = list(group.errors)
        self.where: dict[str, str] = {}         # canonical field -> "row R, column (column X)"
        self.reported: set[str] = set()         # canonical fields whose error is in ``errors`` already
        self.undecoded: set[str] = set()        # cells not UTF-8, reported already: the model would say it again
        self.currency: str | None = None
        self._values: dict[int, tuple[int, str] | None] = {}

    def error(self, row: int, column: str, message: str) -> None:
        self.errors.append(f"row {row}, {self.h.where(column)}: {message}")

    def cell(self, cells: list[str], i: int) -> str:
        return cells[i].strip() if i < len(cells) else ""

    # -- order columns: one value for the order, from whichever of its rows has it --------------------------------
    def order_value(self, i: int) -> tuple[int, str] | None:
        """The order's value in column ``i`` and the row it is first on; None when every row leaves it empty.
        Rows that disagree are an error (said once, however often the column is asked for)."""
        if i in self._values:
            return self._values[i]
        found: tuple[int, str] | None = None
        for row, cells in self.group.rows:
            value = self.cell(cells, i)
            if not value:
                continue
            if found is None:
                found = (row, value)
            elif value != found[1]:
                name = f"{self.h.names[i]} (column {letter(i)})"
                self.errors.append(f"{name}: {_shown(found[1])} on row {found[0]} but {_shown(value)} on row {row}: "
                                   "an order's columns must be the same on all its rows (or left empty)")
                break
        self._values[i] = found
        return found

    def text(self, column: str) -> tuple[int, str] | None:
        i = self.h.index.get(column)
        if i is None:
            return None
        found = self.order_value(i)
        if found is not None:
            self.where[ORDER_COLUMNS[column]] = f"row {found[0]}, {self.h.where(column)}"
        return found

    def put(self, obj: dict[str, Any], column: str, path: str | None = None) -> None:
        found = self.text(column)
        if found is not None:
            target = obj
            parts = (path or ORDER_COLUMNS[column]).split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = found[1]

    def money(self, row: int, column: str, value: str) -> int | None:
        if self.currency is None:
            return None             # the currency is wrong, so are its decimals: only the currency is reported
        try:
            return CanonicalOrder.minor_units(value, self.currency)
        except ValueError as exc:
            self.error(row, column, str(exc))
            return None

    def order_money(self, column: str) -> int | None:
        found = self.text(column)
        return None if found is None else self.money(found[0], column, found[1])

    def instant(self, column: str) -> str | None:
        found = self.text(column)
        if found is None:
            return None
        value = found[1]
        return value[:10] + "T" + value[11:] if _SPACED_TIME.match(value) else value

    # -- the order ---------------------------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        self.check_cells()
        obj: dict[str, Any] = {"channel": NAME, "external_id": self.order_id}
        self.where["external_id"] = f"row {self.group.rows[0][0]}, {self.h.where('order_id')}"
        currency = self.text("currency")
        if currency is not None:
            try:
                CanonicalOrder.currency_digits(currency[1])
                self.currency = currency[1]
            except ValueError as exc:
                self.error(currency[0], "currency", str(exc))
                self.reported.add("currency")
        else:
            self.errors.append(f"{self.h.where('currency')}: required, on at least one of the order's rows")
            self.reported.add("currency")
        obj["currency"] = self.currency or "XXX"
        obj["lines"] = [self.line(k, row, cells) for k, (row, cells) in enumerate(self.group.rows)]
        for column in ("customer_name", "customer_email", "customer_phone"):
            self.put(obj, column)
        customer = obj.setdefault("customer", {})
        self.customer_ref(customer)
        ship_to: dict[str, Any] = {}
        obj["ship_to"] = ship_to
        for column, path in ORDER_COLUMNS.items():
            if path.startswith("ship_to."):
                self.put(obj, column)
        # The carrier needs a name and a phone: a sheet that gives them once, for the customer, means the same.
        for key in ("name", "phone"):
            if not ship_to.get(key) and customer.get(key):
                ship_to[key] = customer[key]
                self.where[f"ship_to.{key}"] = self.where.get(f"customer.{key}", "")
        for column in ("gift_card_code", "note", "order_type", "status"):
            self.put(obj, column)
        for column in _ORDER_MONEY:
            if column != "payment_amount":
                amount = self.order_money(column)
                if amount is not None:
                    obj[ORDER_COLUMNS[column]] = amount
        for column in ("placed_at", "deliver_from", "deliver_by"):
            value = self.instant(column)
            if value is not None:
                obj[column] = value
        self.cancelled(obj)
        payment = self.payment()
        if payment is not None:
            obj["payment"] = payment
        obj["extensions"] = self.extensions(self.h.extra_order, self.group_values)
        return obj

    def check_cells(self) -> None:
        """Bytes that are not UTF-8, and values under no column: an error on their row."""
        width = len(self.h.names)
        for row, cells in self.group.rows:
            if len(cells) <= width and all(self.h.names) and not _UNDECODED.search("".join(cells)):
                continue        # the usual row: nothing to look at cell by cell
            for i, value in enumerate(cells):
                found = _UNDECODED.search(value)
                if found:
                    name = self.h.names[i] if i < width and self.h.names[i] else ""
                    where = f"{name} (column {letter(i)})" if name else f"column {letter(i)}"
                    self.undecoded.add(f"row {row}, {where}")
                    self.errors.append(f"row {row}, {where}: not UTF-8 (byte 0x{ord(found.group()) - 0xDC00:02X}): "
                                       "save the file as \"CSV UTF-8\"")
                elif value.strip() and (i >= width or not self.h.names[i]):
                    self.errors.append(f"row {row}, column {letter(i)}: {_shown(value.strip())} is under no column "
                                       "name (the header names none there)")

    def customer_ref(self, customer: dict[str, Any]) -> None:
        found = self.text("customer_ref")
        if found is not None:
            customer["ref"] = found[1]
        elif customer.get("email"):
            # A guest is known by the address, whatever its case: the same guest is one customer.
            customer["ref"] = customer["email"].lower()
            self.where["customer.ref"] = self.where["customer.email"]
        else:
            # Neither: a customer of its own, the same one on every import of the order.
            customer["ref"] = _derived(f"{NAME}:guest:", self.order_id)

    def cancelled(self, obj: dict[str, Any]) -> None:
        found = self.text("cancelled")
        if found is None:
            return
        word = found[1].lower()
        if word in _TRUE or word in _FALSE:
            obj["cancelled"] = word in _TRUE
        else:
            self.error(found[0], "cancelled", f"{_shown(found[1])} is not true or false (yes or no, 1 or 0)")

    def payment(self) -> dict[str, Any] | None:
        txn, amount = self.text("payment_id"), self.text("payment_amount")
        method, paid_at = self.text("payment_method"), self.instant("paid_at")
        if amount is None:
            if txn is not None:
                self.error(txn[0], "payment_amount", "required with a payment_id: what was paid, e.g. \"123.00\"")
            elif paid_at is not None or method is not None:
                # Without an amount there is no payment to record: said, rather than the order left unpaid.
                row = next(f[0] for f in (self.text("paid_at"), method) if f is not None)
                self.error(row, "payment_amount", "required with payment_method or paid_at: what was paid")
            return None
        payment: dict[str, Any] = {"amount": self.money(amount[0], "payment_amount", amount[1]) or 0}
        if txn is not None:
            payment["transaction_id"] = txn[1]
        else:
            # Cash or a bank transfer records no reference: a stand-in that a re-import repeats.
            payment["transaction_id"] = _derived(f"{NAME}:", self.order_id)
            self.where["payment.transaction_id"] = self.where["payment.amount"]
        if method is not None:
            payment["method"] = method[1]
        if paid_at is not None:
            payment["paid_at"] = paid_at
        return payment

    def group_values(self, i: int) -> str | None:
        found = self.order_value(i)
        return None if found is None else found[1]

    def extensions(self, columns: list[int], value_of: Any) -> dict[str, Any]:
        entries: dict[str, str] = {}
        for i in columns:
            value = value_of(i)
            if value:
                entries[self.h.names[i]] = value
        return fit_extensions(entries)

    # -- a line ------------------------------------------------------------------------------------------------
    def line(self, k: int, row: int, cells: list[str]) -> dict[str, Any]:
        def value(column: str) -> str:
            i = self.h.index.get(column)
            if i is None:
                return ""
            text = self.cell(cells, i)
            if text and column in LINE_COLUMNS:
                self.where[f"lines.{k}.{LINE_COLUMNS[column]}"] = f"row {row}, {self.h.where(column)}"
            return text

        self.where[f"lines.{k}"] = f"row {row}"
        line: dict[str, Any] = {"sku": value("line_sku") or "?"}
        if line["sku"] == "?":
            self.error(row, "line_sku", "required: the SKU of the line (the shop's own, mapped to the catalogue)")
        quantity = value("line_quantity")
        if _QUANTITY.fullmatch(quantity) and 1 <= int(quantity) <= MAX_QUANTITY:
            line["quantity"] = int(quantity)
        else:
            self.error(row, "line_quantity", f"a whole number from 1 to {MAX_QUANTITY:,} is required, not "
                                             f"{_shown(quantity)}")
            line["quantity"] = 1
        price = value("line_unit_price")
        if price:
            line["unit_price"] = self.money(row, "line_unit_price", price)
            if line["unit_price"] is None:
                del line["unit_price"]
        name, line_id = value("line_name"), value("line_id")
        if name:
            line["name"] = name
        if line_id:
            line["channel_line_id"] = line_id
        discount, code = value("line_discount"), value("line_discount_code")
        if discount:
            amount = self.money(row, "line_discount", discount)
            if amount:
                promotion: dict[str, Any] = {"kind": "coupon" if code else "discount", "amount": amount}
                if code:
                    promotion["code"] = code
                line["promotions"] = [promotion]
        elif code:
            self.error(row, "line_discount", f"required with the line_discount_code {_shown(code)}: the amount it "
                                             "took off the line")
        line["extensions"] = self.extensions(self.h.extra_line, lambda i: self.cell(cells, i))
        return line

    def problems(self, exc: ValidationError) -> list[str]:
        """The model's errors named by the row and column they came from (the nearest field the reader placed:
        ``lines.2.promotions.0.amount`` is on the row of line 2), those already reported left out."""
        first, last = self.group.rows[0][0], self.group.rows[-1][0]
        rows = f"rows {first}-{last}" if last != first else f"row {first}"
        out = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            if ".".join(loc) in self.reported:
                continue
            msg = err["msg"].removeprefix("Value error, ")
            for n in range(len(loc), 0, -1):
                place = self.where.get(".".join(loc[:n]))
                if place in self.undecoded:
                    break
                if place:
                    rest = ".".join(loc[n:])
                    out.append(f"{place}, {rest}: {msg}" if rest and "column" not in place else f"{place}: {msg}")
                    break
            else:
                out.append(f"{rows}: {'.'.join(loc) + ': ' if loc else ''}{msg}")
        return list(dict.fromkeys(out))


def _errors(messages: list[str]) -> str:
    shown = messages[:MAX_ERRORS]
    if len(messages) > MAX_ERRORS:
        shown.append(f"and {len(messages) - MAX_ERRORS} more")
    return "; ".join(shown)


class CsvChannel:
    name = NAME

    # Files only: POST /api/webhooks/csv is answered 404, saying the channel's orders come by oms ingest.
    webhooks = False

    def parse(self, body: bytes) -> list[ParsedPayload]:
        if len(body) > MAX_BYTES:
            return [ParsedPayload(None, error=f"the file has {len(body):,} bytes, more than the {MAX_BYTES:,} a "
                                              f"payload may have: split it into smaller files")]
        refused = _not_csv(body)
        if refused:
            return [ParsedPayload(None, error=refused)]
        # Bytes that are not UTF-8 are kept (as U+DC80...) so that the error can name their row and column.
        text = body.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        records: list[list[str]] = []
        try:
            for cells in reader:
                records.append(cells)
                if len(records) > MAX_ROWS + 1:
                    return [ParsedPayload(None, error=f"the file has more than {MAX_ROWS:,} rows of orders: split it "
                                                      f"into files of at most {MAX_ROWS:,} rows, each with the header")]
        except csv.Error as exc:
            # The quoting went wrong: which cells belong to which row after it cannot be known, so no order is
            # taken from the file rather than some read wrongly or left out unseen.
            return [ParsedPayload(None, error=(
                f"row {len(records) + 1} (line {reader.line_num} of the file): malformed CSV ({exc}): a quoted cell "
                "must end with a quote followed by a comma or the end of the line, and a quote inside it is "
                "written twice (\"\"); nothing of the file is taken in: fix it and import it again"))]
        header = _read_header(records[0]) if records else "not a CSV order file: it has no rows; " + EXPECTED
        if isinstance(header, str):
            return [ParsedPayload(None, error=header)]
        results = [ParsedPayload(None, error=item) if isinstance(item, str) else self._one(header, item)
                   for item in self._group(header, records)]
        if not results:
            return [ParsedPayload(None, error="the file has a header but no orders (no rows after row 1)")]
        return results

    def _group(self, header: _Header, records: list[list[str]]) -> list[_Group | str]:
        """The orders' rows, in the file's order, and errors for rows of no order (in place)."""
        id_at = header.index["order_id"]
        out: list[_Group | str] = []
        by_id: dict[str, _Group] = {}
        current: _Group | None = None
        # A row without an order id may be a line of the order before it or of the one after: both fail.
        orphan: str | None = None
        for n, cells in enumerate(records[1:], start=2):
            if not any(c.strip() for c in cells):
                continue        # an empty row (a spreadsheet's trailing ",,,"): no order, no error
            if header.repeated(cells):
                out.append(f"row {n} repeats the header (two exports pasted into one file?): delete it")
                # Whatever follows is another export's: an id seen before it is another order of the same id.
                current = None
                continue
            order_id = cells[id_at].strip() if id_at < len(cells) else ""
            if not order_id:
                out.append(f"row {n}, {header.where('order_id')}: empty: every row names the order it is a line of")
                orphan = f"row {n}, next to this order's rows, has no order_id: it may be a line of this order"
                if current is not None:
                    current.errors.append(orphan)
                continue
            if current is None or current.order_id != order_id:
                group = by_id.get(order_id)
                if group is None:
                    group = by_id[order_id] = _Group(order_id)
                    out.append(group)
                else:
                    group.later.append(n)       # seen before, with other orders' rows in between
                current = group
            current.rows.append((n, cells))
            if orphan is not None:
                if orphan not in current.errors:
                    current.errors.append(orphan)
                orphan = None
        for item in out:
            if isinstance(item, _Group) and item.later:
                first = item.rows[0][0]
                again = ", ".join(str(r) for r in item.later[:5]) + (", ..." if len(item.later) > 5 else "")
                item.errors.append(f"{header.where('order_id')}: the order's rows are not together: row {first}, then "
                                   f"again at row {again} after other orders' rows; keep an order's rows one after "
                                   "another (sort the sheet by order_id)")
        return out

    def _one(self, header: _Header, group: _Group) -> ParsedPayload:
        raw = [{"row": row, "cells": cells} for row, cells in group.rows]
        ext_id = group.order_id
        reader = _Reader(header, group)
        obj = reader.read()
        order = None
        problems: list[str] = []
        try:
            order = CanonicalOrder.model_validate(obj)
        except ValidationError as exc:
            problems = reader.problems(exc)
        if reader.errors or problems or order is None:
            return ParsedPayload(ext_id, error=_errors(reader.errors + problems) or "the order could not be read",
                                 raw=raw)
        return ParsedPayload(order.external_id, order=order, raw=raw)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """Always False: a CSV file comes by ``oms ingest``, never by webhook, so no delivery is genuine."""
        return False


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(CsvChannel())
