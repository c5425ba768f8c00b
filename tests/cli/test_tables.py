"""Every listing of the ``oms`` command at 80 columns, as a person at a narrow terminal or a script reading a pipe
sees it: identifiers, times and amounts whole, no line wider than the terminal, what was left out named, all of
it with ``--wide``, the same rows with ``--json``.

One world, built once for the module (orders held for every kind of reason, shipped, cancelled; a case, a
document, a blacklisted customer, a gift card, a dead message), with identifiers as long as real ones get; the
commands only read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from sqlalchemy import select, update

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, parse_line
from oms_engine.masterdata.files import Row
from oms_engine.payments import wallets
from oms_engine.plugin.testing import drive_until_state
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import OutboxMessage
from tests.support import NO_REFUSALS, ROOT, build_oms, make_config, order_json, payload
from tests.support.cli import Cli

LONG_SKU = "OOLONG-GIFTSET-DELUXE-TIN-OF-TWELVE-2026"
SUPPLIER = "SUP-FUJIAN-TEA-IMPORTERS-0001"
UNMAPPED = "CHANNEL-SKU-NOBODY-MAPPED-YET-0001"
CUSTOMER = "C-WHOLESALE-BUYER-WITH-A-LONG-REF-0001"
GIFT_CARD = "GIFTCARD-0000-1111-2222-3333-4444"
LONG_ERROR = ("the warehouse answered 503 Service Unavailable four times in a row, then closed the connection "
              "before sending a body; the message was given up after its last retry")


def _placed() -> str:
    # Now: the command line's clock is the wall clock, and the after-sales window runs from delivery.
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _one(oms: OMS, order: dict[str, Any]) -> str:
    [r] = oms.intake.ingest("json", payload(order))
    assert r.number, r
    return r.number


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("tables")
    url = f"sqlite:///{tmp / 'oms.db'}"
    build_oms(tmp, url).close()
    oms = OMS(make_config(tmp, url, plugin_settings=NO_REFUSALS), clock=SimulatedClock(utcnow()))
    numbers: dict[str, str] = {}
    try:
        oms.masterdata.apply("suppliers", [Row("test", {"code": SUPPLIER, "name": "Fujian Tea Importers"})],
                             actor="test", source="test")
        oms.masterdata.apply("products", [Row("test", {
            "sku": LONG_SKU, "name": "Oolong gift set, deluxe tin of twelve, the 2026 limited edition",
            "currency": "CNY", "price": "1288.00", "merchant": "M-01", "supplier": SUPPLIER,
            "category": "grocery"})], actor="test", source="test")
        oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", LONG_SKU, 20, document="PO-OPENING-2026-0001",
                       actor="test", note="opening stock counted by hand on the first morning", unit_cost="700.00")
        placed = _placed()
        numbers["shipped"] = _one(oms, order_json("SHOPIFY-2026-11-02-LONG-EXTERNAL-ID-000001",
                                                  [("TEA-1", 2)], placed_at=placed))
        numbers["unmapped"] = _one(oms, order_json("UNMAPPED-0001", [(UNMAPPED, 1)], customer="C-T2",
                                                                     placed_at=placed))
        numbers["blacklisted"] = _one(oms, order_json("BLACKLISTED-0001", customer="C-BAD", placed_at=placed))
        numbers["short"] = _one(oms, order_json("SHORT-STOCK-0001", [("TEA-1", 5000)], customer="C-T3",
                                                               placed_at=placed))
        underpaid = order_json("UNDERPAID-0001", [("MUG-1", 1)], customer="C-T4", placed_at=placed)
        underpaid["payment"]["amount"] = "20.00"
        numbers["underpaid"] = _one(oms, underpaid)
        numbers["cancelled"] = _one(oms, order_json("CANCELLED-0001", [("TEA-1", 4000)], customer="C-T5",
                                                                   placed_at=placed))
        oms.commands.cancel(numbers["cancelled"], actor="test", reason="the customer changed their mind")
        gift = order_json("GIFTSET-0001", [(LONG_SKU, 1)], customer="C-T6", placed_at=placed)
        gift["payment"]["amount"] = "1298.00"       # 1288.00 and 10.00 freight: not in the test catalogue
        numbers["gift"] = _one(oms, gift)
        oms.pipeline.run_until_idle()
        drive_until_state(oms, numbers["gift"], "delivered")
        case = oms.aftersales.open(numbers["gift"], "return_refund", None,
                                   "the tin arrived dented and the lid would not close", actor="test")
        numbers["case"] = case["number"]
        if case["status"] == "under_review":
            oms.aftersales.act(numbers["case"], "approve", actor="test", note="")
        oms.aftersales.act(numbers["case"], "receive", actor="test", note="", damaged={LONG_SKU: 1})
        # After the orders went their way, so that none of them is routed by these.
        for entity, name in (("carriers", "carriers.json"), ("freight-templates", "freight_templates.json")):
            oms.masterdata.import_file(entity, ROOT / "examples" / "data" / name, actor="test")
        oms.masterdata.apply("skus", [Row("test", {"channel": "json", "channel_sku": "SHOP-GIFTSET-2026-0001",
                                                   "sku": LONG_SKU})], actor="test", source="test")
        numbers["document"] = str(oms.documents.create(
            DocKind.PURCHASE_ORDER, "WH-SH", [parse_line(f"{LONG_SKU}:10:700.00")], actor="test",
            supplier=SUPPLIER, note="for the new year")["number"])
        oms.blacklist.add(CUSTOMER, reason="resells what it buys on a marketplace, seen three times", actor="test")
        with oms.db.session() as s:
            wallets.credit(s, "gift_card", GIFT_CARD, "CNY", 50000, oms.clock.now(), actor="test",
                           note="sold at the Nanjing Road counter", adjust=False)
            first = s.scalars(select(OutboxMessage.id).where(OutboxMessage.order_id.is_not(None))
                              .order_by(OutboxMessage.id)).first()
            s.execute(update(OutboxMessage).where(OutboxMessage.id == first)
                      .values(status="dead", attempts=8, last_error=LONG_ERROR))
    finally:
        oms.close()
    yield Cli(tmp, url), numbers


def at(c: Cli, columns: int = 80, **extra: str) -> dict[str, str]:
    """The command's environment with a terminal this wide (the harness's own is 250 columns)."""
    return {**c.env(**extra), "COLUMNS": str(columns)}


def narrow(c: Cli, *args: str, ok: bool | None = True, columns: int = 80) -> Any:
    return c(*args, ok=ok, env=at(c, columns))


def lines_fit(text: str, columns: int = 80) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > columns]
    assert not wide, "\n".join(wide)
    assert "…" not in text, text     # rich's ellipsis: a cell cut short


def first_column(text: str) -> list[str]:
    """The first cell of each row of the tables in ``text`` (a row's continuation lines have it empty)."""
    cells = [line.strip("│").split("│")[0].strip() for line in text.splitlines() if line.startswith("│")]
    return [c for c in cells if c]


# command -> the fields of its --json rows that identify them, in columns never left out, the first the table's
# first column; or, for a command whose --json is not a list of rows, how to find its identifiers in it.
LISTINGS: dict[tuple[str, ...], tuple[str, ...] | Callable[[Any], list[str]]] = {
    ("order", "list"): ("number",),
    ("order", "list", "--status", "on_hold"): ("number",),
    ("order", "holds"): ("number",),
    ("aftersales", "list"): ("number", "order"),
    ("documents", "list"): ("number",),
    ("stock", "list"): ("sku", "warehouse"),
    ("stock", "ledger", "--limit", "30"): ("id", "sku"),
    ("stock", "damaged"): ("sku", "warehouse"),
    ("outbox", "dead"): ("id", "order_number"),
    ("plugins", "list"): ("name",),
    ("channels", "list"): ("account",),
    ("templates", "list"): ("template",),
    ("blacklist", "list"): ("ref",),
    ("products", "list"): ("sku",),
    ("warehouses", "list"): ("code",),
    ("carriers", "list"): ("code",),
    ("services", "list"): ("carrier", "code"),
    ("suppliers", "list"): ("code",),
    ("skus", "list"): ("channel", "channel_sku"),
    ("freight-templates", "list"): ("code",),
    ("report", "late"): lambda data: [a["order"] for a in data["alerts"]],
    ("wallets", "show", "gift_card", GIFT_CARD): lambda data: [data["holder"]],
}
# Identifiers in columns a narrow terminal may leave out: --wide shows them, whole.
WIDE: dict[tuple[str, ...], tuple[str, ...]] = {
    ("products", "list"): ("supplier",),
    ("stock", "ledger", "--limit", "30"): ("document",),
    ("skus", "list"): ("sku",),
    ("order", "list"): ("external_id", "customer"),
    ("plugins", "list"): ("location",),
}


@pytest.mark.parametrize("command", list(LISTINGS), ids=lambda c: " ".join(c[:2]))
def test_each_listing_fits_80_columns_with_every_identifier_whole(world: tuple[Cli, dict[str, str]],
                                                                  command: tuple[str, ...]) -> None:
    c, _ = world
    data = json.loads(narrow(c, *command, "--json").stdout)
    text = narrow(c, *command).stdout
    lines_fit(text)
    fields = LISTINGS[command]
    if callable(fields):
        idents = fields(data)
    else:
        assert data, f"{command}: the world has no rows for it"
        idents = [str(r[n]) for r in data for n in fields if r.get(n)]
        # The same rows, in the same order, as --json gives.
        assert first_column(text) == [str(r[fields[0]]) for r in data], text
    for ident in idents:
        assert ident in text, f"{ident!r} not whole in\n{text}"
    if command in WIDE:
        wide = narrow(c, *command, "--wide").stdout
        assert "left out" not in wide and "…" not in wide
        for ident in (str(r[n]) for r in data for n in WIDE[command] if r.get(n)):
            assert ident in wide, f"{ident!r} not whole in\n{wide}"


def test_the_orders_list_keeps_every_number_and_says_what_it_left_out(world: tuple[Cli, dict[str, str]]) -> None:
    c, numbers = world
    text = narrow(c, "order", "list").stdout
    for number in numbers.values():
        if number.isdigit():
            assert number in text
    # The one thing to copy, the state and why: never left out. The rest is named, with the way to see it.
    header = next(line for line in text.splitlines() if "number" in line)
    assert "status" in header and "reason" in header and "external id" not in header
    note = " ".join(text.split("left out to fit 80 columns:")[1].split())
    assert "external id" in note and "--wide" in note
    assert "insufficient stock for SKU 'TEA-1'" in " ".join(
        " ".join(cell.strip() for cell in line.strip("│").split("│")[-1:]) for line in text.splitlines())

    wide = narrow(c, "order", "list", "--wide").stdout
    assert "left out" not in wide and "…" not in wide
    header = next(line for line in wide.splitlines() if "number" in line)
    for column in ("channel", "external id", "customer", "warehouse", "placed"):
        assert column in header, header
    assert "SHOPIFY-2026-11-02-LONG-EXTERNAL-ID-000001" in wide
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", wide)

    # A wide terminal has room for every column: nothing left out, no --wide needed.
    roomy = narrow(c, "order", "list", columns=250).stdout
    assert "left out" not in roomy and "SHOPIFY-2026-11-02-LONG-EXTERNAL-ID-000001" in roomy


@pytest.mark.parametrize("which", ["shipped", "unmapped", "blacklisted", "short", "underpaid", "cancelled", "gift"])
def test_order_show_fits_80_columns_with_its_numbers_and_times_whole(world: tuple[Cli, dict[str, str]],
                                                                     which: str) -> None:
    c, numbers = world
    number = numbers[which]
    text = narrow(c, "order", "show", number).stdout
    lines_fit(text)
    story = json.loads(c("order", "show", number, "--json").stdout)
    assert text.startswith(f"Order {number}")
    for p in story["payments"]:
        assert p["serial"] in text
    for i in story["invoices"]:
        assert i["number"] in text
    for case in story["aftersales"]:
        assert case["number"] in text
    # Every time carries its zone, and none is cut: a day and an hour are followed by the rest and "UTC".
    times = list(re.finditer(r"\b\d{4}-\d\d-\d\d[T ]\d", text))
    assert times
    for m in times:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text[m.start():]), text[m.start():m.start() + 40]
    # The decisions read as key: value lines, not a JSON record squeezed into a column.
    if story["decisions"]:
        assert "decisions" in text and '{"' not in text
        for d in story["decisions"]:
            assert f"{d['ruleset']}@{d['version'][:12]}" in text
    wide = narrow(c, "order", "show", number, "--wide").stdout
    assert "left out" not in wide


def test_the_decisions_show_the_facts_the_rules_saw(world: tuple[Cli, dict[str, str]]) -> None:
    c, numbers = world
    text = narrow(c, "order", "show", numbers["blacklisted"]).stdout
    block = text[text.index("decisions"):]
    assert "fired: blacklisted-customer (p10)" in block
    assert "customer.blacklisted: true" in block          # a fact, as the rules write it
    assert "reasons: customer is on the blacklist" in block


def test_a_long_job_ends_with_a_summary_and_shows_progress_only_at_a_terminal(cli: Cli) -> None:
    paths = [cli.write_orders(f"batch-{i}.json", order_json(f"BATCH-{i}"),
                              order_json(f"BATCH-{i}-U", [(f"NEW-{i}", 1)])) for i in range(3)]
    piped = cli("ingest", "--channel", "json", *paths, env=at(cli))
    # stdout: one line per order, for scripts; the summary and the reasons go to the person, on stderr.
    assert len(piped.stdout.splitlines()) == 6
    assert "3 files taken in" in piped.stderr and "unmapped SKU" in piped.stderr
    assert "taking in" not in piped.stderr        # no progress bar into a pipe or a log
    lines_fit(piped.stderr.split("3 files taken in")[1])
    ran = cli("run", env=at(cli))
    assert "unit(s) of work" in ran.stdout and "stage" in ran.stdout
    lines_fit(ran.stdout)
    assert cli("run").stdout.strip() == "nothing to do"

    # At a terminal (rich is told so; a dumb one cannot redraw a bar), stderr carries the progress bar while the
    # files go in.
    tty = cli("ingest", "--channel", "json", *paths, env={**at(cli, TTY_COMPATIBLE="1"), "TERM": "xterm"})
    assert "taking in" in tty.stderr
    assert len(tty.stdout.splitlines()) == 6


def test_an_import_ends_with_a_summary_table(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "suppliers.csv"
    path.write_text("code,name\nSUP-A,Alpha Teas\nSUP-B,Beta Pots\n", encoding="utf-8")
    text = cli("suppliers", "import", str(path), env=at(cli)).stdout
    lines_fit(text)
    rows = {r[0]: r[1] for r in (
        [c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│"))}
    assert (rows["created"], rows["unchanged"]) == ("2", "0")
    again = cli("suppliers", "import", str(path)).stdout
    assert "unchanged" in again and json.loads(cli("suppliers", "import", str(path), "--json").stdout)["unchanged"] == 2


def test_piped_output_is_laid_out_at_80_columns_whatever_terminal_started_it(cli: Cli) -> None:
    cli.ingest(cli.write_orders("o.json", order_json("PIPE-1", [("NOT-MAPPED-ANYWHERE-AT-ALL-0001", 1)])))
    env = {k: v for k, v in cli.env().items() if k != "COLUMNS"}
    p = cli("order", "list", env=env, subprocess=True)      # stdout a pipe, no COLUMNS: 80
    lines_fit(p.stdout)
    assert max(cell_len(line) for line in p.stdout.splitlines()) > 60      # laid out at 80, not narrower
    assert json.loads(cli("order", "list", "--json").stdout)[0]["number"] in p.stdout


def test_the_widths_a_listing_takes_never_cut_a_whole_column() -> None:
    from oms_engine.cli.render import Col, Listing, prose
    t = Listing("number", Col("channel", drop=2), Col("external id", drop=1), prose("reason"))
    t.add_row("2612084047099751810", "shopify", "X" * 40, "insufficient stock for SKU 'TEA-1' " * 3)
    shown, widths, total = t.layout(60)
    assert shown == [0, 1, 3] and widths[0] == 19 and total <= 60     # the widest droppable column goes first
    shown, widths, total = t.layout(60, wide=True)
    assert shown == [0, 1, 2, 3] and widths[2] == 40 and total > 60
    narrowest = Listing("number", "status")
    narrowest.add_row("2612084047099751810", "pending_payment")
    assert narrowest.layout(20)[2] > 20     # wider than asked rather than a number cut
