"""Every kind of stock movement and what it does to a stock row: the one place the ledger's semantics live.

A movement is one append-only ledger row, typed by the document it comes
from. Its quantity ``q`` moves the balance of one warehouse and SKU:

================  ==============================  ========  ========  =======  ===========
movement          source document                 on hand   reserved  damaged  quantity
================  ==============================  ========  ========  =======  ===========
opening           opening balance (stock import)  +q                           > 0
reserve           order placed or re-routed                 +q                 > 0
release           order cancelled or re-routed              -q                 > 0
sale_out          order shipped                   -q        -q                 > 0
customer_return   parcel or return received back  +q                           > 0
return_damaged    a return received damaged                           +q       > 0
purchase_receipt  purchase order received         +q                           > 0
return_to_vendor  goods sent back to a supplier   -q                           > 0
adjustment        adjustment note                 ±q                           not 0
transfer          transfer order (out of one      ±q                           not 0
                  warehouse, into another)
stocktake         a count: counted - on hand      ±q                           not 0
scrap             damaged goods written off or                        -q       > 0
                  sent back
regrade           damaged goods found sellable    +q                  -q       > 0
================  ==============================  ========  ========  =======  ===========

Available is on hand - reserved and never goes below zero: a movement that
would take it there is refused (a reservation is simply not made). Stock is
valued at moving average cost per warehouse and SKU: goods in at a known unit
cost add quantity x cost to the row's value; goods in without one (a return,
a count that finds more) come in at the current average; goods out take
their share of the value, rounded to the minor unit, and the last unit out
takes what is left, so the value of a row is always the sum of its ledger
rows' value deltas and no cent is lost. Every movement of on hand or
reserved goes through the transaction's stock batch (batch.py); nothing else
writes a stock row.

Damaged goods (a customer's return that came back broken) are a status of
their own, kept apart from on hand in ``damaged_stock`` (damaged.py): never
available, never reserved, and without value: they left the books at average
cost when they were sold, and come back at none (a refund is the rules'
business, not the stock's). ``scrap`` writes them off; ``regrade`` puts them
back on hand at the current average, as a return in good condition would come.
Their ledger rows carry the change in ``damaged_delta``; a regrade is one row
that moves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Movement(StrEnum):
    OPENING = "opening"
    RESERVE = "reserve"
    RELEASE = "release"
    SALE_OUT = "sale_out"
    CUSTOMER_RETURN = "customer_return"
    PURCHASE_RECEIPT = "purchase_receipt"
    RETURN_TO_VENDOR = "return_to_vendor"
    ADJUSTMENT = "adjustment"
    TRANSFER = "transfer"
    STOCKTAKE = "stocktake"
    RETURN_DAMAGED = "return_damaged"
    SCRAP = "scrap"
    REGRADE = "regrade"


@dataclass(frozen=True)
class Effect:
    on_hand: int      # +1, -1, 0; for a signed movement +1 (the sign is the quantity's)
    reserved: int     # +1, -1, 0
    signed: bool = False   # the quantity carries its own sign (not 0)
    # Goods in that may carry a unit cost (otherwise they come in at the current average).
    costed: bool = False
    damaged: int = 0  # +1, -1, 0: the damaged status (damaged.py), apart from on hand


EFFECTS: dict[Movement, Effect] = {
    Movement.OPENING: Effect(+1, 0, costed=True),
    Movement.RESERVE: Effect(0, +1),
    Movement.RELEASE: Effect(0, -1),
    Movement.SALE_OUT: Effect(-1, -1),
    Movement.CUSTOMER_RETURN: Effect(+1, 0),
    Movement.PURCHASE_RECEIPT: Effect(+1, 0, costed=True),
    Movement.RETURN_TO_VENDOR: Effect(-1, 0),
    Movement.ADJUSTMENT: Effect(+1, 0, signed=True, costed=True),
    Movement.TRANSFER: Effect(+1, 0, signed=True),
    Movement.STOCKTAKE: Effect(+1, 0, signed=True),
    Movement.RETURN_DAMAGED: Effect(0, 0, damaged=+1),
    Movement.SCRAP: Effect(0, 0, damaged=-1),
    Movement.REGRADE: Effect(+1, 0, damaged=-1),
}
# Movements whose goods come in at a cost the document states.
COSTED = frozenset(m for m, e in EFFECTS.items() if e.costed)
# Movements of damaged goods: posted by damaged.py, which keeps the damaged status.
DAMAGED = frozenset(m for m, e in EFFECTS.items() if e.damaged)


class MovementError(ValueError):
    pass


def deltas(kind: Movement, qty: int) -> tuple[int, int]:
    """(on hand delta, reserved delta) of a movement of ``qty``; MovementError for a quantity it cannot take."""
    effect = EFFECTS[kind]
    if not isinstance(qty, int) or isinstance(qty, bool):
        raise MovementError(f"{kind.value}: the quantity must be a whole number, got {qty!r}")
    if effect.signed:
        if qty == 0:
            raise MovementError(f"{kind.value}: the quantity must not be 0")
    elif qty <= 0:
        raise MovementError(f"{kind.value}: the quantity must be positive, got {qty}")
    return effect.on_hand * qty, effect.reserved * qty


def damaged_delta(kind: Movement, qty: int) -> int:
    """The change of damaged stock a movement of ``qty`` makes (checked as :func:`deltas` checks it)."""
    deltas(kind, qty)
    return EFFECTS[kind].damaged * qty


def value_out(value: int, on_hand: int, qty: int) -> int:
    """The value ``qty`` units leaving ``on_hand`` units worth ``value`` take with them, at average cost:
    rounded half up to the minor unit; the last units out take what is left."""
    if qty >= on_hand:
        return value
    return (2 * value * qty + on_hand) // (2 * on_hand)


def value_in(value: int, on_hand: int, qty: int, unit_cost: int | None) -> int:
    """The value ``qty`` units coming in add: at their stated unit cost, else at the current average."""
    if unit_cost is not None:
        return qty * unit_cost
    if on_hand <= 0:
        return 0
    return (2 * value * qty + on_hand) // (2 * on_hand)
