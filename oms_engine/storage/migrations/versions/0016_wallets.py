"""wallets: ``wallet_accounts`` and ``wallet_movements``, the gift cards and points the OMS keeps the balance of;
gift card and points become means of payment

Orders stored before kept gift card and points as discounts. Here each becomes a payment of the order that
redeemed it (the channel's card or points: no account moves), its lines' discounts become their share of the
coupon alone, and an order invoiced at what was left to pay gets the invoice reversed by a credit note and
issued again at what the customer paid by every means.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 05:30:00
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from oms_engine.invoices.einvoice import einvoice
from oms_engine.money import apportion

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('wallet_accounts',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'holder', 'currency', name='uq_wallet_account')
    )
    op.create_table('wallet_movements',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('payment', sa.String(length=40), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.CheckConstraint('amount <> 0', name='ck_wallet_movement_amount'),
    sa.ForeignKeyConstraint(['account_id'], ['wallet_accounts.id'], ),
    sa.ForeignKeyConstraint(['payment'], ['payments.serial'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_wallet_movements_account', 'wallet_movements', ['account_id', 'id'], unique=False)
    _means_of_payment(op.get_bind())


def _means_of_payment(conn: sa.Connection) -> None:
    orders = conn.execute(sa.text(
        "SELECT id, number, parent_id, channel, currency, goods, freight, tax, coupon, gift_card, points, "
        "created_at FROM orders WHERE gift_card > 0 OR points > 0 ORDER BY id")).mappings().all()
    for o in orders:
        lines = conn.execute(sa.text("SELECT id, goods FROM order_lines WHERE order_id = :o ORDER BY line_no"),
                             {"o": o["id"]}).all()
        shares = apportion(min(o["coupon"], o["goods"]), [g for _, g in lines]) if lines else []
        for (line_id, _), share in zip(lines, shares, strict=True):
            conn.execute(sa.text("UPDATE order_lines SET discount = :d WHERE id = :i"), {"d": share, "i": line_id})
        if o["parent_id"] is not None:
            continue
        place = conn.execute(sa.text("SELECT COUNT(*) FROM payments WHERE order_id = :o AND kind = 'payment'"),
                             {"o": o["id"]}).scalar() or 0
        for method, amount in (("gift_card", o["gift_card"]), ("points", o["points"])):
            if amount <= 0:
                continue
            place += 1
            serial = f"{o['number']}-P{place:02d}"
            conn.execute(sa.text(
                "INSERT INTO payments (serial, order_id, kind, method, method_detail, amount, currency, provider_ref, "
                "status, refund_of, for_order_id, reason, case_number, created_at, updated_at) VALUES (:s, :o, "
                "'payment', :m, :d, :a, :c, :r, 'captured', NULL, NULL, '', NULL, :t, :t)"),
                {"s": serial, "o": o["id"], "m": method, "d": f"the channel's {method}", "a": amount,
                 "c": o["currency"], "r": f"{method}:{o['channel']}", "t": o["created_at"]})
            conn.execute(sa.text(
                "INSERT INTO payment_events (payment, at, from_status, to_status, actor, note) VALUES "
                "(:s, :t, NULL, 'captured', 'migration', 'a discount before gift card and points were payments')"),
                {"s": serial, "t": o["created_at"]})
        _reissue(conn, o)


def _reissue(conn: sa.Connection, o: Any) -> None:
    """Reverse what is left of the order's invoice and issue it again for what the customer paid by every means;
    the refunds credited against the old invoice are credited against the new one too, so invoiced less credited
    stays paid less refunded."""
    old = conn.execute(sa.text("SELECT number, amount, tax, document FROM invoices WHERE order_id = :o "
                               "AND kind = 'invoice' ORDER BY id DESC"), {"o": o["id"]}).mappings().first()
    if old is None:
        return
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    base, place = old["number"].rsplit("-INV", 1)
    document = old["document"] if isinstance(old["document"], dict) else json.loads(old["document"])
    buyer = dict(document.get("buyer") or {})
    credited, credited_tax, notes = conn.execute(sa.text(
        "SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(tax), 0), COUNT(*) FROM invoices WHERE order_id = :o "
        "AND kind = 'credit_note'"), {"o": o["id"]}).one()
    credited, credited_tax, notes = int(credited), int(credited_tax), int(notes)

    def issue(number: str, kind: str, amount: int, tax: int, items: list[dict[str, Any]], refers_to: str | None,
              reason: str) -> None:
        conn.execute(_INVOICES.insert().values(
            number=number, order_id=o["id"], for_order_id=o["id"] if refers_to else None, kind=kind, amount=amount,
            tax=tax, currency=o["currency"], lines=items, refers_to=refers_to, refunds=[] if refers_to else None,
            reason=reason, created_at=now,
            document=einvoice(number=number, kind=kind, at=now, currency=o["currency"], buyer=buyer, items=items,
                              amount=amount, tax=tax, refers_to=refers_to)))

    def note(amount: int, tax: int, refers_to: str, reason: str) -> None:
        nonlocal notes
        if amount > 0:
            notes += 1
            issue(f"{base}-CN{notes:02d}", "credit_note", amount, tax,
                  [{"line_no": 0, "sku": "REISSUE", "name": reason, "quantity": 1, "amount": amount - tax,
                    "tax": tax}], refers_to, reason)

    note(old["amount"] - credited, old["tax"] - credited_tax, old["number"], "reversed to be issued again")
    lines = conn.execute(sa.text("SELECT line_no, sku, name, quantity, unit_price, goods, discount FROM order_lines "
                                 "WHERE order_id = :o ORDER BY line_no"), {"o": o["id"]}).mappings().all()
    items = [{"line_no": ln["line_no"], "sku": ln["sku"], "name": ln["name"], "quantity": ln["quantity"],
              "unit_price": ln["unit_price"], "amount": ln["goods"] - ln["discount"]} for ln in lines]
    excess = max(o["coupon"] - o["goods"], 0)
    freight = o["freight"] - min(excess, o["freight"])
    tax = o["tax"] - min(max(excess - o["freight"], 0), o["tax"])
    if freight:
        items.append({"line_no": 0, "sku": "FREIGHT", "name": "freight", "quantity": 1, "unit_price": freight,
                      "amount": freight})
    for it, share in zip(items, apportion(tax, [it["amount"] for it in items]) if items else [], strict=True):
        it["tax"] = share
    total = sum(it["amount"] + it["tax"] for it in items)
    number = f"{base}-INV{int(place) + 1:02d}"
    issue(number, "invoice", total, tax, items, None, f"reissues {old['number']}")
    note(credited, tax * credited // total if total else 0, number, "refunds credited before the reissue")


_INVOICES = sa.table("invoices", sa.column("number"), sa.column("order_id"), sa.column("for_order_id"),
                     sa.column("kind"), sa.column("amount"), sa.column("tax"), sa.column("currency"),
                     sa.column("lines", sa.JSON()), sa.column("refers_to"), sa.column("refunds", sa.JSON()),
                     sa.column("reason"), sa.column("document", sa.JSON()), sa.column("created_at"))


def downgrade() -> None:
    op.drop_index('ix_wallet_movements_account', table_name='wallet_movements')
    op.drop_table('wallet_movements')
    op.drop_table('wallet_accounts')
