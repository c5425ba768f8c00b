"""What a held order says to a person: why it is held, in words that fit its state, and what to do next.

The reasons are the OMS's own (orders/creation.py at intake, orders/backorders.py when a release or restore
checks again, the blocking rules, routing, couriers, the pipeline's faults): each known one maps to the
command that moves the order on. A reason this module does not know falls back to what its hold stage
asks of a person: look, then release or reject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_SKU = r"'(?P<sku>.+?)'"

Step = tuple[str, tuple[str, ...]]     # what to do, in words, and the commands that do it


def _map(m: re.Match[str], number: str, channel: str) -> Step:
    return (f"map the channel's SKU {m['sku']} to a product; the order goes on by itself",
            (f"oms skus map {channel} {m['sku']} SKU",))


def _stock(m: re.Match[str], number: str, channel: str) -> Step:
    return (f"receive stock of {m['sku']}, or order it from a supplier; the order goes on by itself when the goods "
            "are in", (f"oms stock receive WAREHOUSE {m['sku']} QUANTITY --document DOC",
                       f"oms documents po WAREHOUSE --supplier SUPPLIER --line {m['sku']}:QUANTITY:COST"))


def _activate(m: re.Match[str], number: str, channel: str) -> Step:
    return (f"activate the product {m['sku']}, then release the order (or reject it)",
            (f"oms products activate {m['sku']}", f"oms order release {number}", f"oms order reject {number}"))


def _currency(m: re.Match[str], number: str, channel: str) -> Step:
    return (f"price {m['sku']} in {m['want']}, then release the order (or reject it)",
            (f"oms products set {m['sku']} currency={m['want']} price=PRICE", f"oms order release {number}",
             f"oms order reject {number}"))


def _payment(m: re.Match[str], number: str, channel: str) -> Step:
    return ("correct the payment: record what is missing; once the money is right release the order, or reject it "
            "(what was paid is refunded)",
            (f"oms order pay {number} --amount AMOUNT --txn SERIAL", f"oms order release {number}",
             f"oms order reject {number}"))


def _wallet(m: re.Match[str], number: str, channel: str) -> Step:
    return ("a gift card or points balance is short of what the order redeems: take the rest as a payment, then "
            "release the order (or reject it)",
            (f"oms order pay {number} --amount AMOUNT --txn SERIAL", f"oms order release {number}",
             f"oms order reject {number}"))


def _figures(m: re.Match[str], number: str, channel: str) -> Step:
    return ("check the channel's figures: releasing accepts the OMS's arithmetic, rejecting refuses the order",
            (f"oms order release {number}", f"oms order reject {number}"))


# The reasons orders/creation.py and orders/backorders.py give, one part of a hold reason ("; " between them).
_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str], str, str], Step]]] = [
    (re.compile(rf"^unmapped SKU {_SKU}$"), _map),
    (re.compile(rf"^SKU {_SKU} could not be mapped: "), _map),
    (re.compile(rf"^SKU {_SKU} is still not in the catalogue$"), _map),
    (re.compile(rf"^insufficient stock for SKU {_SKU}$"), _stock),
    (re.compile(rf"^SKU {_SKU} is deactivated in the catalogue$"), _activate),
    (re.compile(rf"^SKU {_SKU} is priced in (?P<have>\w+), order is in (?P<want>\w+)$"), _currency),
    (re.compile(r"^(payment|cash to collect) .* differs from payable "), _payment),
    (re.compile(r" held .*, the order redeems "), _wallet),
    (re.compile(r"^(totals disagree|discounts |line promotions |line \d+: promotions |freight)"), _figures),
]

_WAITS = {"sku": "unmapped SKU '{key}'", "stock": "insufficient stock for SKU '{key}'"}


def _by_stage(stage: str | None, number: str) -> Step:
    release, reject = f"oms order release {number} --note WHY", f"oms order reject {number} --note WHY"
    if stage == "screening":
        return "review it (the blocking rules held it), then release or reject it", (release, reject)
    if stage == "routing":
        return ("no warehouse can ship it: receive stock, or send it to a warehouse, then release it",
                ("oms stock receive WAREHOUSE SKU QUANTITY --document DOC", f"oms order move {number} WAREHOUSE",
                 release))
    if stage == "courier":
        return ("no carrier takes the parcel: look at the carriers and their services, then release it",
                ("oms carriers list", "oms services list", release))
    if stage and stage.endswith("-fault"):
        return "a plugin failed (the incidents say which): once it is fixed, releasing runs the step again", \
            (release,)
    if stage == "exchange":
        return "a replacement: it goes on by itself once the goods it replaces are back", \
            ("oms aftersales receive CASE",)
    return "look at it, then release or reject it", (release, reject)


def next_steps(number: str, status: str, stage: str | None, reason: str | None, channel: str,
               waiting_for: Iterable[Mapping[str, Any]] = ()) -> list[Step]:
    """What a person does to move a held (or binned) order on: one step per thing that holds it."""
    if status == "binned":
        return [("in the recycle bin: restore it for review (it is cancelled when its time there ends)",
                 (f"oms order restore {number}",))]
    if status != "on_hold":
        return []
    parts = [p.strip() for p in (reason or "").split("; ") if p.strip()]
    # What it waits for (a SKU to map, stock to come in) is kept apart from the words: it holds even when the
    # reason was worded otherwise (a restored order's).
    parts += [_WAITS[w["kind"]].format(key=w["key"]) for w in waiting_for if w.get("kind") in _WAITS]
    steps: list[Step] = []
    for part in parts:
        for pattern, make in _REASONS:
            m = pattern.search(part)
            if m:
                step = make(m, number, channel)
                if step not in steps:
                    steps.append(step)
                break
    return steps or [_by_stage(stage, number)]


def step_lines(steps: Iterable[Step]) -> list[str]:
    """Steps as lines to print: ``next: what to do``, then each command on a line of its own, to copy."""
    out: list[str] = []
    for what, commands in steps:
        out.append(f"next: {what}")
        out.extend(f"      {command}" for command in commands)
    return out


def hold_line(status: str, stage: str | None, reason: str | None) -> str:
    """Why the order is (or was) held, in words that fit its state: a cancelled order is not "held"."""
    if not reason:
        return ""
    if status == "on_hold":
        return f"held at {stage}: {reason}" if stage else f"held: {reason}"
    if status == "binned":
        return f"in the recycle bin: {reason}"
    return f"it had been held at {stage}: {reason}" if stage else f"earlier: {reason}"


def reason_cell(status: str, reason: str | None) -> str:
    """The reason column of a listing: why it is held now, or, marked so, why it was."""
    if not reason:
        return ""
    return reason if status in ("on_hold", "binned") else f"earlier: {reason}"
