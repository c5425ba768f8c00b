"""``oms templates ...``: the message templates, and one rendered for an order as its customer would get it."""

from __future__ import annotations

import json

import click

from ..errors import CommandError
from .render import Col, Listing, print_json, wide_option
from .root import Ctx, console, errors_to_exit, main


@main.group("templates")
def templates_group() -> None:
    """Message templates (templates/<name>.<medium>[.<language>].j2) and previews of them."""


@templates_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="the templates as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def templates_list(c: Ctx, as_json: bool, wide: bool) -> None:
    """Every template: its name, medium, language and file.

    \b
    Examples:
      oms templates list
      oms templates list --json
      oms templates render shipped --order NUMBER     # one previewed
    """
    oms = c.oms()
    try:
        rows = [{"template": key, "medium": t.medium, "language": t.language or "", "file": t.origin}
                for key, t in oms.plugins.templates.items()]
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("template", "medium", Col("language", drop=1), Col("file", drop=2), title="templates")
    for r in rows:
        t.add_row(r["template"], r["medium"], r["language"] or "any", r["file"])
    t.print(wide=wide)


@templates_group.command("render")
@click.argument("name")
@click.option("--order", "number", required=True, help="the order whose data it is rendered with")
@click.option("--language", default=None, help="this language's version (default: the order's customer's)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def templates_render(c: Ctx, name: str, number: str, language: str | None, as_json: bool) -> None:
    """Render template NAME with order NUMBER's data as it stands, as its customer would get it now.

    Nothing is sent. The transition in the context is the order's last one.
    """
    from sqlalchemy import select

    from ..messaging.notifications import notification_context, pick_template
    from ..messaging.templates import TemplateProblem, render
    from ..orders.queries import get_order
    from ..storage.models import History

    oms = c.oms()
    try:
        if name not in oms.plugins.templates:
            raise CommandError(f"no template '{name}' (known: {', '.join(oms.plugins.templates.names())})")
        with oms.db.read() as s:
            order = get_order(s, number)
            last = s.scalars(select(History).where(History.order_id == order.id).order_by(History.id.desc())).first()
            transition = {"event": last.event if last else "", "from_state": (last.from_state or "") if last else "",
                          "to_state": order.status, "actor": last.actor if last else "", "customer_visible": True,
                          "label": ""}
            wanted = language if language is not None else (order.contact or {}).get("language", "")
            template = pick_template(oms.plugins, name, wanted)
            context = notification_context(order, order.status, transition)
        try:
            subject = render(template.subject, context, name=template.key, origin=template.origin) \
                if template.subject else ""
            body = render(template.body, context, name=template.key, origin=template.origin)
        except TemplateProblem as exc:
            raise CommandError(str(exc)) from None
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps({"template": template.key, "medium": template.medium, "language": template.language,
                               "subject": subject, "body": body}, ensure_ascii=False, indent=2))
        return
    console.print(f"[bold]{template.key}[/bold] ({template.medium}, {template.language or 'any language'})",
                  highlight=False)
    if subject:
        console.print(f"Subject: {subject}", highlight=False, markup=False)
    console.print(body, highlight=False, markup=False)
