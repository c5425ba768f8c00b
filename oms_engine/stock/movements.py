"""Every kind of stock movement and what it does to a stock row: the one place the ledger's semantics live.

A movement is one append-only ledger row, typed by the document it comes
from. Its quantity ``q`` moves the balance of one warehouse and SKU:

================  ==============================  ========  ========  ===========
movement          source document                 on hand   reserved  quantity
================  ==============================  ========  ========  ===========
opening           opening balance (stock import)  +q                  > 0
reserve           order placed or re-routed                 +q        > 0
release           order cancelled or re-routed              -q        > 0
sale_out          order shipped                   -q        -q        > 0
customer_return   parcel or return received back  +q                  > 0
purchase_receipt  purchase order received         +q                  > 0
return_to_vendor  goods sent back to a supplier   -q                  > 0
adjustment        adjustment note                 ±q                  not 0
transfer          transfer order (out of one      ±q                  not 0
                  warehouse, into another)
stocktake         a count: counted - on hand      ±q                  not 0
================  ==============================  ========  ========  ===========

Available is on hand - reserved and never goes below zero: a movement that
would take it there is refused (a reservation is simply not made). Stock is
valued at moving average cost per warehouse and SKU: goods in at a known unit
cost add quantity x cost to the row's value; goods in without one (a return,
a count that finds more) come in at the current average; goods out take
their share of the value, rounded to the minor unit, and the last unit out
takes what is left, so the value of a row is always the sum of its ledger
rows' value deltas and no cent is lost. Every movement goes through the
transaction's stock batch (batch.py); nothing else writes a stock row.
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


@dataclass(frozen=True)
class Effect:
    on_hand: int      # +1, -1, 0; for a signed movement +1 (the sign is the quantity's)
    reserved: int     # +1, -1, 0
    signed: bool = False   # the quantity carries its own sign (not 0)
    # Goods in that may carry a unit cost (otherwise they come in at the current average).
    costed: bool = False


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
}
# Movements whose goods come in at a cost the document states.
COSTED = frozenset(m for m, e in EFFECTS.items() if e.costed)


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
