"""How the ``oms`` command prints for a person: listing tables, times, the progress of long jobs, an order's story.

A listing is a :class:`Listing`: it fits the width it is printed at (the terminal's or, when the output goes
to a pipe or a file, ``COLUMNS`` or 80: root.py) without cutting what a person copies. Identifiers, times,
amounts and states stay whole on one line; free text (reasons, notes, errors) wraps in the room left. When
even so the table is too wide, the columns the command declared least needed are left out, the most
droppable first, and a line under the table names them; ``--wide`` leaves none out. Times carry their zone
(:func:`when`). A long job shows its progress on stderr when stderr is a terminal, nothing otherwise
(:func:`progress`), so pipes, logs and tests read only the results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from rich.cells import cell_len
from rich.console import Console, JustifyMethod, RenderableType
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from ..money import format_minor
from . import root
from .holds import hold_line, next_steps, step_lines

# What a column costs besides its cells in rich's default box: a space either side and a rule after it, and
# the rule at the left edge once. (The default box stays: scripts and tests read its rules.)
_PER_COLUMN, _EDGE = 3, 1
_WIDE_TEXT = 60     # with --wide, free text wraps past this many columns, not at the terminal's edge


@dataclass(frozen=True)
class Col:
    """A column of a listing, as its command declares it."""

    header: str
    wrap: bool = False      # free text, wrapped in the room left; otherwise every cell stays whole on one line
    drop: int = 0           # 0: always shown; otherwise left out when the table does not fit, highest first
    justify: JustifyMethod = "left"
    least: int = 16         # the narrowest a wrapping column is made before columns are left out


def num(header: str, drop: int = 0) -> Col:
    """A column of counts or amounts: whole, aligned right."""
    return Col(header, drop=drop, justify="right")


def prose(header: str, drop: int = 0, least: int = 16) -> Col:
    """A column of free text (reasons, notes, errors): wraps, long words folded, never cut."""
    return Col(header, wrap=True, drop=drop, least=least)


class Listing:
    """A table of rows for a person; :meth:`print` lays it out for the width it is printed at."""

    def __init__(self, *columns: Col | str, title: str | None = None) -> None:
        self.columns = [c if isinstance(c, Col) else Col(c) for c in columns]
        self.title = title
        self.rows: list[list[str]] = []
        self.styles: list[str | None] = []

    def add_row(self, *cells: object, style: str | None = None) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(["" if c is None else str(c) for c in cells])
        self.styles.append(style)

    def layout(self, width: int, *, wide: bool = False) -> tuple[list[int], dict[int, int], int]:
        """The columns shown (indexes), each one's width, and the table's width: ``width`` or less, unless
        the columns that are never left out are wider together (then as wide as they are: nothing is cut)."""
        cols = self.columns
        natural = [self._natural(i) for i in range(len(cols))]
        if wide:    # as wide as it needs: every header on one line too
            natural = [max(n, cell_len(c.header)) for n, c in zip(natural, cols, strict=True)]
        # --wide makes the table as wide as it needs: free text then wraps only past a comfortable measure.
        least = [min(natural[i], max(_WIDE_TEXT if wide else c.least, _longest_word(c.header))) if c.wrap
                 else natural[i] for i, c in enumerate(cols)]

        def need(shown: list[int]) -> int:
            return sum(least[i] for i in shown) + _PER_COLUMN * len(shown) + _EDGE

        # A column with nothing in it goes first: it says nothing.
        empty = [all(not row[i] for row in self.rows) for i in range(len(cols))]
        shown = list(range(len(cols)))
        if not wide:
            for i in sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: (not empty[i], -cols[i].drop, -i)):
                if need(shown) <= width:
                    break
                shown.remove(i)
            # Leaving out a wide column may make room for a narrower one that was left out before it.
            for i in sorted(set(range(len(cols))) - set(shown), key=lambda i: (cols[i].drop, i)):
                if not empty[i] and need(sorted([*shown, i])) <= width:
                    shown = sorted([*shown, i])
        total = max(width, need(shown))
        widths = {i: natural[i] for i in shown if not cols[i].wrap}
        room = total - _PER_COLUMN * len(shown) - _EDGE - sum(widths.values())
        widths.update(_share(room, {i: (least[i], natural[i]) for i in shown if cols[i].wrap}))
        # Room to spare: a header on one line rather than folded at its spaces.
        spare = total - _PER_COLUMN * len(shown) - _EDGE - sum(widths.values())
        for i in shown:
            if spare > 0:
                more = min(spare, max(0, cell_len(cols[i].header) - widths[i]))
                widths[i] += more
                spare -= more
        return shown, widths, total

    def print(self, console: Console | None = None, *, wide: bool = False) -> None:
        console = console or root.console
        shown, widths, total = self.layout(console.width, wide=wide)
        # A title wider than its table would be folded over it: then it goes on a line of its own, above.
        width = sum(widths.values()) + _PER_COLUMN * len(shown) + _EDGE
        above = self.title is not None and cell_len(self.title) > width
        if above:
            emit(Text(str(self.title), style="italic"), console.width, console)
        table = Table(title=None if above else self.title)
        for i in shown:
            c = self.columns[i]
            # A header folds at its spaces; a whole column's cells never need to (the column is as wide as the
            # widest), and fold, not the ellipsis, is there should one ever be wider: nothing is cut.
            table.add_column(c.header, width=widths[i], overflow="fold", justify=c.justify)
        for row, style in zip(self.rows, self.styles, strict=True):
            table.add_row(*(Text(row[i], no_wrap=not self.columns[i].wrap) for i in shown), style=style)
        emit(table, total, console)
        # Columns left out with nothing in them are not worth a word.
        left_out = [self.columns[i].header for i in range(len(self.columns))
                    if i not in shown and any(row[i] for row in self.rows)]
        if left_out:
            emit(Text(f"left out to fit {console.width} columns: {', '.join(left_out)} (--wide shows every "
                      "column)", style="dim"), console.width, console)

    def _natural(self, i: int) -> int:
        """A column's width with no cell wrapped (its header may fold at its spaces)."""
        cells = [cell_len(line) for row in self.rows for line in row[i].split("\n")]
        return max([1, _longest_word(self.columns[i].header), *cells])


def _longest_word(words: str) -> int:
    return max((cell_len(w) for w in words.split()), default=0)


def _share(room: int, wanted: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Room shared among wrapping columns (least, natural): each its natural width when it fits, the others an
    even share of the rest, never under their least."""
    out: dict[int, int] = {}
    pending = dict(wanted)
    while pending:
        share = room // len(pending)
        settled = {i: nat for i, (lo, nat) in pending.items() if nat <= share} or \
            {i: lo for i, (lo, nat) in pending.items() if lo >= share}
        if not settled:
            extra = room - share * len(pending)
            for k, i in enumerate(sorted(pending)):
                out[i] = share + (1 if k < extra else 0)
            return out
        for i, w in settled.items():
            out[i] = w
            room -= w
            del pending[i]
    return out


def emit(renderable: RenderableType, width: int, console: Console | None = None) -> None:
    """Print laid out at ``width`` columns, wider than the console if need be: a line is never cut."""
    console = console or root.console
    out: list[Segment] = []
    for line in console.render_lines(renderable, console.options.update_width(max(width, 1)), pad=False):
        # No trailing blanks (a centred title pads itself to the table's width): a pipe gets text as typed.
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line:
            last = line[-1]
            line[-1] = Segment(last.text.rstrip(), last.style, last.control)
        out.extend(line)
        out.append(Segment.line())
    console.print(Segments(out), crop=False)


def wide_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--wide``: every column, however wide the table gets."""
    return click.option("--wide", is_flag=True,
                        help="every column, however wide the table gets (by default the least needed ones are "
                             "left out to fit the terminal)")(fn)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- times


def when(value: str | datetime | None) -> str:
    """A time as a person reads it, with its zone, e.g. ``2026-12-06 14:03:09 UTC``. The OMS keeps UTC without
    a zone; a time with another offset keeps it. Anything that is not a time is shown as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if len(value) <= 10:       # a day (2026-12-06) or a word (open): no time of day to zone
            return value
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None or value.utcoffset() == timedelta(0):
        return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return value.isoformat(sep=" ", timespec="seconds")


# --------------------------------------------------------------------------- long jobs


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr while a long job runs, when stderr is a terminal; nothing otherwise. Yields
    ``step(advance=1, description=None)``. ``total`` None: a job whose size is not known ahead."""
    console = root.err
    if not console.is_terminal:
        yield lambda advance=1, description=None: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    # transient: when the job ends the bar goes, and the summary takes its place.
    with Progress(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(description, total=total)

        def step(advance: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=advance, **({"description": description} if description else {}))

        yield step


# --------------------------------------------------------------------------- an order's story (oms order show)


def _line(message: str | Text, console: Console) -> None:
    # Text, not markup: an order's reasons and names may hold square brackets.
    emit(Text(message) if isinstance(message, str) else message, console.width, console)


def _pairs(pairs: list[str], console: Console, *, first: str = "") -> None:
    """Facts such as ``placed 2026-12-06 14:03:09 UTC`` side by side, a line broken between two, never inside
    one (a time, an amount stays on one line)."""
    lines: list[str] = []
    line = first
    for pair in pairs:
        if line and cell_len(line) + 3 + cell_len(pair) > console.width and line != first:
            lines.append(line)
            line = "  " + pair
        else:
            line = f"{line}   {pair}" if line and line != first else (f"{first} {pair}" if first else pair)
    if line and line != first:
        lines.append(line)
    for text_line in lines:
        _line(text_line, console)


def print_order(d: dict[str, Any], *, wide: bool = False, console: Console | None = None) -> None:
    console = console or root.console
    cur = d["currency"]
    head = Text()
    head.append(f"Order {d['number']}", style="bold")
    head.append(f"  {d['status']}")
    held = hold_line(d["status"], d.get("hold_stage"), d.get("hold_reason"))
    if held:
        head.append(f"  ({held})")
    _line(head, console)
    _pairs([f"channel {d['channel']} / {d['external_id'] or '-'}", f"customer {d['customer']}",
            f"placed {when(d['placed_at'])}", f"shard {d['shard']}",
            *([f"parent {d['parent']}"] if d.get("parent") else [])], console)
    for line in step_lines(next_steps(d["number"], d["status"], d.get("hold_stage"), d.get("hold_reason"),
                                      d["channel"], d.get("waiting_for") or [])):
        _line(line, console)
    _pairs([f"{k} {v}" for k, v in d["amounts_text"].items() if d["amounts"][k]], console, first="amounts:")
    if d["warehouse"] or d["tracking_no"]:
        _pairs([f"warehouse {d['warehouse'] or '-'}", f"carrier {d['carrier'] or '-'}",
                f"tracking {d['tracking_no'] or '-'}"], console)
    kept = d.get("channel_fields") or {}
    if kept.get("order_type") or kept.get("channel_status"):
        _pairs([f"type {kept.get('order_type') or '-'}", f"status {kept.get('channel_status') or '-'}"], console,
               first="at the channel:")

    def show(t: Listing) -> None:
        t.print(console, wide=wide)

    asked = any(ln.get("properties") for ln in d["lines"])
    t = Listing(num("#"), "sku", prose("name", least=12), num("qty"), num("price", drop=2), num("discount", drop=3),
                Col("merchant", drop=4), *([prose("asked for", drop=1)] if asked else []), title="lines")
    for ln in d["lines"]:
        row = [ln["line_no"], ln["sku"], ln["name"], ln["quantity"], format_minor(ln["unit_price"], cur),
               format_minor(ln["discount"], cur), ln["merchant"]]
        if asked:
            row.append("; ".join(f"{p['name']}: {p['value']}" for p in ln.get("properties") or []))
        t.add_row(*row)
    show(t)
    if kept.get("extensions"):
        t = Listing("field", prose("value"), title="the channel's other fields")
        for name, value in kept["extensions"].items():
            t.add_row(name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:300])
        show(t)
    if d["children"]:
        t = Listing("child", "status", Col("warehouse", drop=1), num("payable"), title="children")
        for ch in d["children"]:
            t.add_row(ch["number"], ch["status"], ch["warehouse"] or "-", format_minor(ch["payable"], cur))
        show(t)
    if d.get("payments"):
        t = Listing("serial", Col("kind", drop=1), Col("method", drop=3), num("amount"), "status",
                    Col("provider ref", drop=4), Col("of", drop=5), prose("why", drop=2, least=12), title="payments")
        for p in d["payments"]:
            t.add_row(p["serial"], p["kind"], p["method"], p["amount_text"], p["status"], p["provider_ref"] or "",
                      p["refund_of"] or "", p["reason"])
        show(t)
    if d.get("invoices"):
        t = Listing("number", Col("kind", drop=2), num("amount"), num("tax", drop=4), Col("of", drop=5),
                    prose("why", drop=3, least=12), prose("tax platform", drop=1, least=12),
                    Col("official no", drop=6), title="invoices and credit notes")
        for i in d["invoices"]:
            sub = i.get("submission") or {}
            state = f"{sub.get('state', '')}: {sub['reason']}" if sub.get("reason") else sub.get("state", "")
            t.add_row(i["number"], i["kind"], i["amount_text"], format_minor(i["tax"], cur), i["refers_to"] or "",
                      i["reason"], state, sub.get("official_no") or "")
        show(t)
    if d.get("aftersales"):
        t = Listing("case", Col("kind", drop=3), "status", prose("lines", drop=4, least=10), num("worth"),
                    prose("decision", drop=1), prose("refunds", drop=2), title="after-sales cases")
        for c in d["aftersales"]:
            t.add_row(c["number"], c["kind"], c["status"],
                      ", ".join(f"#{ln['line_no']} x{ln['quantity']}" for ln in c["lines"]), c["amount_text"],
                      c["decision"], ", ".join(f"{r['serial']} {r['status']}" for r in c["refunds"]))
        show(t)
    if d.get("updates"):
        t = Listing("received", "change", prose("outcome"), title="updates from the channel")
        for u in d["updates"]:
            for c in u["changes"] or [{"kind": "-", "outcome": u["outcome"]}]:
                t.add_row(when(u["received_at"]), c["kind"], c["outcome"] if u["status"] == "done" else "pending")
        show(t)
    asked_of = d.get("address_requests") or []
    if asked_of:
        t = Listing(num("#"), Col("order", drop=3), Col("warehouse", drop=4), Col("document", drop=5),
                    prose("new address"), "status", Col("asked", drop=2), Col("answered", drop=1),
                    prose("answer", drop=6), title="new addresses asked of the warehouse")
        for r in asked_of:
            t.add_row(r["id"], r["order"], r["warehouse"], r["document"], _address(r["ship_to"]), r["status"],
                      when(r["requested_at"]), when(r["answered_at"]), r["answer"])
        show(t)
    t = Listing("at", "event", Col("from", drop=3), Col("to", drop=1), Col("actor", drop=2),
                prose("cause", least=14), title="timeline")
    steps = [(h["at"] or "", h["event"], h["from"] or "", h["to"], h["actor"], h["cause"]) for h in d["history"]]
    # Stable: at the same second, a transition comes before the address step it caused or allowed.
    for at, *rest in sorted(steps + _address_steps(asked_of, d["number"]), key=lambda step: step[0]):
        t.add_row(when(at), *rest)
    show(t)
    if d["decisions"]:
        _decisions(d["decisions"], console)
    if d["messages"]:
        t = Listing(num("id"), Col("kind", drop=2), "to", "topic", "status", num("tries", drop=1),
                    prose("last error", drop=3), title="outbox")
        for m in d["messages"]:
            t.add_row(m["id"], m["kind"], m["target"], m["topic"], m["status"], m["attempts"], m["last_error"] or "")
        show(t)
    if d.get("waiting_for"):
        _line("waiting for: " + ", ".join(f"{w['kind']} {w['key']}" for w in d["waiting_for"]), console)
    if d.get("tracking"):
        t = Listing("at", Col("from", drop=3), "status", prose("what the customer sees", least=12),
                    prose("where", drop=1, least=10), Col("tracking", drop=2), title="tracking")
        for e in d["tracking"]:
            t.add_row(when(e["at"]), e["source"], e["status"], e["label"] if e["customer_visible"] else "(not shown)",
                      e["place"], e["tracking_no"])
        show(t)
    if d.get("exchanges"):
        t = Listing(num("id"), "at", "", "kind", Col("with", drop=3), "topic", Col("correlation", drop=5),
                    num("status", drop=2), num("bytes", drop=4), prose("note", drop=1, least=10),
                    title="messages on the wire (--json for their bodies)")
        for x in d["exchanges"]:
            t.add_row(x["id"], when(x["at"]), "->" if x["direction"] == "out" else "<-", x["kind"], x["connector"],
                      x["topic"], x["correlation_id"], "" if x["status"] is None else x["status"], x["bytes"],
                      x["note"])
        show(t)
    if d.get("late_steps"):
        t = Listing("step", Col("after", drop=3), Col("limit", drop=2), "due", Col("raised", drop=1), "resolved",
                    title="late steps")
        for ls in d["late_steps"]:
            t.add_row(ls["step"], ls["after"], ls["limit"], when(ls["due_at"]), when(ls["raised_at"]),
                      when(ls["resolved_at"]) or "open")
        show(t)
    if d["incidents"]:
        t = Listing("at", Col("stage", drop=2), "plugin", Col("where", drop=3), prose("error"),
                    prose("what the OMS did", drop=1), title="incidents")
        for i in d["incidents"]:
            t.add_row(when(i["at"]), i["stage"], i["plugin"] or "(core)", i["hook"], i["error"], i["action"])
        show(t)


def _decisions(decisions: list[dict[str, Any]], console: Console) -> None:
    """Each decision as a block: when, where, the ruleset version and the rules that fired, then what it
    decided and the facts it saw as ``key: value`` lines, indented (a long value wraps under itself)."""
    _line(Text("decisions", style="bold"), console)
    for dec in decisions:
        fired = ", ".join(f"{f['rule']} (p{f['priority']})" for f in dec["fired"]) or "(none)"
        _line(f"{when(dec['at'])}  {dec['point']}  {dec['ruleset']}@{dec['version'][:12]}", console)
        _field("fired", fired, 2, console)
        outcome = dec["outcome"]
        # A decision that explains itself (merging, courier, move) says why in words; the rest is the record.
        why = outcome.get("why") if isinstance(outcome, dict) else None
        if isinstance(why, str):
            _field("why", why, 2, console)
        elif isinstance(outcome, dict) and outcome:
            _line("  outcome:", console)
            for key, value in _flat(outcome):
                _field(key, value, 4, console)
        elif outcome not in (None, {}, []):
            _field("outcome", _scalar(outcome), 2, console)
        if dec.get("facts"):
            _line("  facts:", console)
            for key, value in _flat(dec["facts"]):
                _field(key, value, 4, console)


def _field(key: str, value: str, indent: int, console: Console) -> None:
    # Wrapped lines of a long value line up under its start, so the key stands out.
    label = f"{key}: "
    body = Text(label + value)
    emit(Padding(body, (0, 0, 0, indent), expand=False), console.width, console)


def _flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested record as dotted keys and readable values; a list of plain values on one line."""
    if isinstance(value, dict):
        if not value:
            return [(prefix, "{}")] if prefix else []
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(_scalar(v) for v in value) if value else "(none)")]
        out = []
        for n, v in enumerate(value):
            out.extend(_flat(v, f"{prefix}[{n}]"))
        return out
    return [(prefix, _scalar(value))]


def _scalar(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"   # as the rules write it
    if isinstance(v, str):
        return v or '""'
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _address(a: dict[str, Any] | None) -> str:
    """An address on one line: its street, city and region."""
    a = a or {}
    return ", ".join(str(a[k]) for k in ("line1", "line2", "district", "city", "region", "postcode") if a.get(k))


def _address_steps(asked: list[dict[str, Any]], number: str) -> list[tuple[str, ...]]:
    """The address requests as timeline rows, among the order's transitions: asked, then answered."""
    out: list[tuple[str, ...]] = []
    for r in asked:
        about = "" if r["order"] == number else f" (part {r['order']})"
        out.append((r["requested_at"] or "", "address asked", "", "", r["warehouse"],
                    f"request {r['id']}{about}: {_address(r['ship_to'])}"))
        if r["answered_at"]:
            out.append((r["answered_at"], f"address {r['status']}", "", "", r["warehouse"],
                        f"request {r['id']}{about}: {r['answer']}"))
    return out
