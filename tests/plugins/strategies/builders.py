"""Small builders for the plain views, and hypothesis strategies over them.

The views are frozen dataclasses, so tests build them directly; these helpers
only fill in the fields a given test does not care about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from oms_engine import Address, LineView, OrderView, StockView, WarehouseView


def wh(code: str, priority: int = 1, *, caps: tuple[str, ...] = (), lat: float = 0.0, lon: float = 0.0,
       region: str = "", city: str = "") -> WarehouseView:
    return WarehouseView(code=code, name=code, country="CN", region=region, city=city,
                         priority=priority, lat=lat, lon=lon, capabilities=frozenset(caps))


def line(line_no: int, sku: str, quantity: int, *, merchant: str = "M1", weight_g: int = 100,
         **attributes: bool | int | str) -> LineView:
    return LineView(line_no=line_no, sku=sku, quantity=quantity, unit_price=1000, goods=1000 * quantity,
                    discount=0, merchant=merchant, weight_g=weight_g, attributes=attributes)


def order(*lines: LineView, region: str = "", country: str = "CN", city: str = "",
          reserved: Mapping[str, Mapping[int, int]] | None = None) -> OrderView:
    return OrderView(number="SO1", channel="test", currency="CNY", customer_ref="C1",
                     customer_level="regular",
                     ship_to=Address(name="A", country=country, region=region, city=city, line1="x"),
                     lines=tuple(lines), payable=0, freight=0, reserved=reserved or {})


def stock(warehouses: list[WarehouseView], available: Mapping[tuple[str, str], int]) -> StockView:
    return StockView(warehouses=tuple(warehouses), available=dict(available))


SKUS = ("A", "B", "C", "D")
CODES = ("W1", "W2", "W3", "W4")
CAPS = ("cold_chain", "oversize")


@st.composite
def lines_st(draw: Any) -> tuple[LineView, ...]:
    n = draw(st.integers(1, 6))
    out = []
    for i in range(1, n + 1):
        attrs: dict[str, bool | int | str] = {}
        for cap in CAPS:
            v = draw(st.sampled_from([None, True, False]))
            if v is not None:
                attrs[cap] = v
        flag = draw(st.sampled_from([None, True, False, 1, 0, "x", "y"]))
        if flag is not None:
            attrs["flag"] = flag
        out.append(line(i, draw(st.sampled_from(SKUS)), draw(st.integers(1, 20)),
                        merchant=draw(st.sampled_from(["M1", "M2", "M3"])),
                        weight_g=draw(st.integers(0, 3000)), **attrs))
    return tuple(out)


@st.composite
def order_and_stock(draw: Any) -> tuple[OrderView, StockView]:
    lines = draw(lines_st())
    codes = draw(st.lists(st.sampled_from(CODES), unique=True, max_size=4))
    warehouses = [wh(c, draw(st.integers(0, 3)), caps=tuple(draw(st.sets(st.sampled_from(CAPS)))),
                     lat=draw(st.floats(-60, 60)), lon=draw(st.floats(-170, 170)))
                  for c in codes]
    available = {(c, s): draw(st.integers(0, 30)) for c in codes for s in SKUS
                 if draw(st.booleans())}
    reserved: dict[str, dict[int, int]] = {}
    for c in codes:
        if draw(st.booleans()):
            picked = draw(st.lists(st.sampled_from(lines), unique_by=lambda ln: ln.line_no, max_size=3))
            reserved[c] = {ln.line_no: draw(st.integers(1, ln.quantity)) for ln in picked}
            if draw(st.booleans()):
                reserved[c][99] = 5  # a line this order does not have: must be ignored
    o = order(*lines, region=draw(st.sampled_from(["", "Zhejiang", "Guangdong"])),
              city=draw(st.sampled_from(["", "Hangzhou", "Shenzhen"])), reserved=reserved)
    return o, stock(warehouses, available)


def effective(o: OrderView, s: StockView, warehouse: str, sku: str) -> int:
    """The test's own statement of "stock as this order sees it", independent of the plugin."""
    own = sum(q for ln_no, q in o.reserved.get(warehouse, {}).items()
              for ln in o.lines if ln.line_no == ln_no and ln.sku == sku)
    return s.qty(warehouse, sku) + own
