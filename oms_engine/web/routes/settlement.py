"""Settlement statements (read): per merchant and period, sales, refunds, freight and commission
(settlement/statements.py); ``oms settlement`` prints the same."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from pydantic import Field

from ...settlement.commission import CommissionRates
from ...settlement.statements import statements
from ..auth import READ, requires
from ..errors import ApiError, json_response
from ..openapi import operation, query
from ..requests import oms
from ..schemas import Answer
from .reports import PeriodQuery, period_param

bp = Blueprint("settlement", __name__)
TAGS = ["settlement"]


class SettlementQuery(PeriodQuery):
    pass


class Statement(Answer):
    merchant: str
    currency: str
    orders: int
    sales: int = Field(description="minor units, as every amount of a statement")
    sales_tax: int
    freight: int
    freight_tax: int
    gross: int
    refunds: int
    refunds_tax: int
    commission: int
    payout: int
    payout_text: str
    commission_by_rate: list[dict[str, Any]]


class MerchantStatement(Statement):
    documents: list[dict[str, Any]] = Field(description="the invoices and credit notes it is made of")


class Statements(Answer):
    since: str
    until: str
    statements: list[Statement]
    totals: dict[str, dict[str, int]] = Field(description="per currency: invoiced and credited in the period")


class MerchantStatements(Statements):
    statements: list[MerchantStatement]


@bp.get("/api/settlement")
@requires(READ)
@operation(query=SettlementQuery, answers={200: Statements}, tags=TAGS)
def all_merchants() -> Response:
    """One statement per merchant and currency over the period (default: the last 7 days), and the totals."""
    period, app = period_param(query(SettlementQuery)), oms()
    with app.db.read() as s:
        return json_response(statements(s, period, CommissionRates(app.rulebook)))


@bp.get("/api/settlement/<merchant>")
@requires(READ)
@operation(query=SettlementQuery, answers={200: MerchantStatements}, tags=TAGS, refusals=(404,))
def one_merchant(merchant: str) -> Response:
    """A merchant's statement with the invoices and credit notes it is made of."""
    period, app = period_param(query(SettlementQuery)), oms()
    with app.db.read() as s:
        data = statements(s, period, CommissionRates(app.rulebook), merchant=merchant)
    if not data["statements"]:
        raise ApiError(404, f"merchant '{merchant[:64]}' sold nothing and was refunded nothing in the period")
    return json_response(data)
