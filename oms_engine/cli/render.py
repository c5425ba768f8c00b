"""Printing an order's story (``oms order show``) for a person."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from ..money import format_minor
from .root import console


def print_order(d: dict[str, Any]) -> None:
    cur = d["currency"]
    console.print(f"[bold]Order {d['number']}[/bold]  {d['status']}"
                  + (f"  (held at {d['hold_stage']}: {d['hold_reason']})" if d.get("hold_reason") else ""),
                  highlight=False)
    console.print(f"channel {d['channel']} / {d['external_id'] or '-'}   customer {d['customer']}   "
                  f"placed {d['placed_at']}   shard {d['shard']}"
                  + (f"   parent {d['parent']}" if d.get("parent") else ""), highlight=False)
    console.print("amounts: " + ", ".join(f"{k} {v}" for k, v in d["amounts_text"].items() if d["amounts"][k]),
                  highlight=False)
    if d["warehouse"] or d["tracking_no"]:
        console.print(f"warehouse {d['warehouse'] or '-'}   carrier {d['carrier'] or '-'}   "
                      f"tracking {d['tracking_no'] or '-'}", highlight=False)
    kept = d.get("channel_fields") or {}
    if kept.get("order_type") or kept.get("channel_status"):
        console.print(f"at the channel: type {kept.get('order_type') or '-'}   status "
                      f"{kept.get('channel_status') or '-'}", highlight=False)
    t = Table("#", "sku", "name", "qty", "price", "discount", "merchant", title="lines")
    asked = any(ln.get("properties") for ln in d["lines"])
    if asked:
        t.add_column("asked for")
    for ln in d["lines"]:
        row = [str(ln["line_no"]), ln["sku"], ln["name"], str(ln["quantity"]), format_minor(ln["unit_price"], cur),
               format_minor(ln["discount"], cur), ln["merchant"]]
        if asked:
            row.append("; ".join(f"{p['name']}: {p['value']}" for p in ln.get("properties") or []))
        t.add_row(*row)
    console.print(t)
    if kept.get("extensions"):
        t = Table("field", "value", title="the channel's other fields")
        for name, value in kept["extensions"].items():
            t.add_row(name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:300])
        console.print(t)
    if d["children"]:
        t = Table("child", "status", "warehouse", "payable", title="children")
        for ch in d["children"]:
            t.add_row(ch["number"], ch["status"], ch["warehouse"] or "-", format_minor(ch["payable"], cur))
        console.print(t)
    if d.get("payments"):
        t = Table(title="payments")
        t.add_column("serial", no_wrap=True)    # what a person copies: never cut or folded
        for name in ("kind", "method", "amount", "status", "provider ref", "of", "why"):
            t.add_column(name)
        for p in d["payments"]:
            t.add_row(p["serial"], p["kind"], p["method"], p["amount_text"], p["status"], p["provider_ref"] or "",
                      p["refund_of"] or "", p["reason"])
        console.print(t)
    if d.get("invoices"):
        t = Table(title="invoices and credit notes")
        t.add_column("number", no_wrap=True)
        for name in ("kind", "amount", "tax", "of", "why", "tax platform", "official no"):
            t.add_column(name)
        for i in d["invoices"]:
            sub = i.get("submission") or {}
            state = f"{sub.get('state', '')}: {sub['reason']}" if sub.get("reason") else sub.get("state", "")
            t.add_row(i["number"], i["kind"], i["amount_text"], format_minor(i["tax"], cur), i["refers_to"] or "",
                      i["reason"], state, sub.get("official_no") or "")
        console.print(t)
    if d.get("aftersales"):
        t = Table(title="after-sales cases")
        t.add_column("case", no_wrap=True)
        for name in ("kind", "status", "lines", "worth", "decision", "refunds"):
            t.add_column(name)
        for c in d["aftersales"]:
            t.add_row(c["number"], c["kind"], c["status"],
                      ", ".join(f"#{ln['line_no']} x{ln['quantity']}" for ln in c["lines"]), c["amount_text"],
                      c["decision"], ", ".join(f"{r['serial']} {r['status']}" for r in c["refunds"]))
        console.print(t)
    if d.get("updates"):
        t = Table("received", "change", "outcome", title="updates from the channel")
        for u in d["updates"]:
            for c in u["changes"] or [{"kind": "-", "outcome": u["outcome"]}]:
                t.add_row(u["received_at"], c["kind"], c["outcome"] if u["status"] == "done" else "pending")
        console.print(t)
    asked = d.get("address_requests") or []
    if asked:
        t = Table("#", "order", "warehouse", "document", "new address", "status", "asked", "answered", "answer",
                  title="new addresses asked of the warehouse")
        for r in asked:
            t.add_row(str(r["id"]), r["order"], r["warehouse"], r["document"], _address(r["ship_to"]), r["status"],
                      r["requested_at"] or "", r["answered_at"] or "", r["answer"])
        console.print(t)
    t = Table("at", "event", "from", "to", "actor", "cause", title="timeline")
    steps = [(h["at"] or "", h["event"], h["from"] or "", h["to"], h["actor"], h["cause"]) for h in d["history"]]
    # Stable: at the same second, a transition comes before the address step it caused or allowed.
    for row in sorted(steps + _address_steps(asked, d["number"]), key=lambda step: step[0]):
        t.add_row(*row)
    console.print(t)
    t = Table("at", "point", "ruleset@version", "rules fired", "outcome", title="decisions")
    for dec in d["decisions"]:
        fired = ", ".join(f"{f['rule']} (p{f['priority']})" for f in dec["fired"]) or "(none)"
        # A decision that explains itself (merging, courier, move) says why in words; others show the record.
        why = dec["outcome"].get("why") if isinstance(dec["outcome"], dict) else None
        t.add_row(dec["at"], dec["point"], f"{dec['ruleset']}@{dec['version'][:12]}", fired,
                  why if isinstance(why, str) else json.dumps(dec["outcome"], ensure_ascii=False)[:160])
    console.print(t)
    if d["messages"]:
        t = Table("id", "kind", "to", "topic", "status", "tries", "last error", title="outbox")
        for m in d["messages"]:
            t.add_row(str(m["id"]), m["kind"], m["target"], m["topic"], m["status"], str(m["attempts"]),
                      m["last_error"] or "")
        console.print(t)
    if d.get("waiting_for"):
        console.print("waiting for: " + ", ".join(f"{w['kind']} {w['key']}" for w in d["waiting_for"]),
                      highlight=False)
    if d.get("tracking"):
        t = Table("at", "from", "status", "what the customer sees", "where", "tracking", title="tracking")
        for e in d["tracking"]:
            t.add_row(e["at"], e["source"], e["status"], e["label"] if e["customer_visible"] else "(not shown)",
                      e["place"], e["tracking_no"])
        console.print(t)
    if d.get("exchanges"):
        t = Table("id", "at", "", "kind", "with", "topic", "correlation", "status", "bytes", "note",
                  title="messages on the wire (--json for their bodies)")
        for x in d["exchanges"]:
            t.add_row(str(x["id"]), x["at"], "->" if x["direction"] == "out" else "<-", x["kind"], x["connector"],
                      x["topic"], x["correlation_id"], "" if x["status"] is None else str(x["status"]),
                      str(x["bytes"]), x["note"])
        console.print(t)
    if d.get("late_steps"):
        t = Table("step", "after", "limit", "due", "raised", "resolved", title="late steps")
        for ls in d["late_steps"]:
            t.add_row(ls["step"], ls["after"], ls["limit"], ls["due_at"], ls["raised_at"], ls["resolved_at"] or "open")
        console.print(t)
    if d["incidents"]:
        t = Table("at", "stage", "plugin", "where", "error", "what the OMS did", title="incidents")
        for i in d["incidents"]:
            t.add_row(i["at"], i["stage"], i["plugin"] or "(core)", i["hook"], i["error"], i["action"])
        console.print(t)


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
