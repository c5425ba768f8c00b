"""The decision points of the pipeline: one ruleset (one YAML file in rules/) each."""

from __future__ import annotations

from enum import StrEnum


class DecisionPoint(StrEnum):
    BLOCKING = "blocking"            # hold risky orders for review
    SPLIT = "split"                  # divide an order into child orders
    ROUTING = "routing"              # choose a warehouse
    MERGING = "merging"              # ship orders of one customer as one parcel
    CARRIERS = "carriers"            # choose the carrier and its service
    NOTIFICATIONS = "notifications"  # tell the customer what happened
    AFTERSALES = "aftersales"        # approve, review or deny an after-sales case
    REFUNDS = "refunds"              # which means of payment a refund goes back to first
    COMMISSION = "commission"        # the commission a merchant pays on its sales (settlement statements)
    FREIGHT = "freight"              # the freight template an order is charged by (or checked against)
    STOCK = "stock"                  # how much of each warehouse's stock each channel may sell


POINTS: tuple[str, ...] = tuple(p.value for p in DecisionPoint)
