"""A marketplace played on loopback, for the tests and the demo: it serves orders the way Shopify's REST Admin
API and Amazon's Selling Partner API (Orders v0) serve them, pages, cursors, credentials and all, and it fails
and answers slowly when asked to.

* Shopify: ``GET /admin/api/<version>/orders.json?status=any&limit=N&updated_at_min=T&order=updated_at asc``,
  then ``?limit=N&page_info=P`` from the ``Link: <...>; rel="next"`` header of each page (as Shopify's cursor
  pagination: with page_info, no other filter is allowed); the token in ``X-Shopify-Access-Token``.
* Amazon: ``GET /orders/v0/orders?MarketplaceIds=M&LastUpdatedAfter=T&MaxResultsPerPage=N`` (or
  ``NextToken=P``), ``GET /orders/v0/orders/<id>/orderItems`` and ``.../address``; the token in
  ``x-amz-access-token``.

What the OMS tells the marketplace of its orders (channels/reports.py) is taken as each API takes it, checked
and applied to the orders it holds, and kept in ``received`` (method, path, body):

* Shopify: ``GET orders/<id>/fulfillment_orders.json``, ``POST fulfillments.json`` (by fulfillment order
  line items, with ``tracking_info``), ``GET orders/<id>/fulfillments.json``, ``GET/POST
  orders/<id>/fulfillments/<f>/events.json``, ``POST orders/<id>/cancel.json`` (422 when cancelled already),
  ``GET orders/<id>/transactions.json`` (the order's sale, when it is paid; an authorization, and its capture
  once the whole order is fulfilled or :meth:`Marketplace.capture` is called), ``GET/POST
  orders/<id>/refunds.json`` (a refund over what was paid is 422), ``GET orders/<id>.json``;
* WooCommerce (``kind="woocommerce"``, HTTP Basic with the token as ``key:secret``): ``GET/PUT
  /wp-json/wc/v3/orders/<id>``, ``GET/POST .../notes``, ``GET/POST .../refunds`` (over the total: 400);
* Amazon: ``POST orders/<id>/shipmentConfirmation`` (more than is left to ship: 400), and the feeds API:
  ``POST /feeds/2021-06-30/documents`` answers an upload address for a content type, the document is ``PUT``
  there with that content type (another: 403, as a signed address answers), ``POST /feeds/2021-06-30/feeds``
  applies it: an order acknowledgement with ``Failure`` cancels the order (or its items), a payment adjustment
  refunds, once per ``MerchantAdjustmentItemID``; a ``JSON_LISTINGS_FEED`` (JSON, header ``sellerId`` and
  ``version`` 2.0) sets ``inventory`` by its ``PATCH`` messages' ``fulfillment_availability``, a SKU not listed
  is an issue of the feed's processing report (``feeds[n]["issues"]``), the others are applied.

Stock: :meth:`Marketplace.add_product` puts a SKU on sale with a quantity available (``inventory``, by SKU,
which a test reads); what the OMS sets of it:

* Shopify: ``GET products.json`` (``limit`` up to 250, ``fields``, ``page_info`` pages by ``Link`` as for
  orders), ``GET locations/<id>.json`` (one location, ``location_id``; another: 404), ``GET
  inventory_levels.json?inventory_item_ids=...&location_ids=...`` (at most 50 items; ``available`` null for an
  item not tracked), ``POST inventory_levels/set.json`` (another location or an unknown item: 404, an item not
  tracked: 422);
* WooCommerce: ``GET /wp-json/wc/v3/products?sku=A,B`` (products and variations, ``per_page`` up to 100,
  ``X-WP-Total``/``X-WP-TotalPages``), ``POST /wp-json/wc/v3/products/batch`` and ``POST
  .../products/<parent>/variations/batch`` (``update``: over 100 items 413; an id that is not the endpoint's
  product or variation is that item's ``error``, the others are applied).

Orders are kept in the channel's own format; :meth:`Marketplace.add` and :meth:`Marketplace.change` stamp
them with the time they were last updated, which is what both APIs page by. ``fail(n)`` makes the next n
requests answer 503, ``delay`` makes every answer wait. Started on a free port of 127.0.0.1; ``close()``
stops it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from . import marketplace_answers as answers

SHOPIFY_PREFIX = "/admin/api/"
AMAZON_ORDERS = "/orders/v0/orders"
UPLOADS = "/feed-uploads/"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class _BadRequest(Exception):
    def __init__(self, body: bytes) -> None:
        super().__init__(body.decode())
        self.answer: tuple[int, bytes, dict[str, str]] = (400, body, {})


def _shopify_paging(query: Mapping[str, str]) -> tuple[int, dict[str, Any] | None]:
    """The ``limit`` of a Shopify list request and its ``page_info`` decoded (None: the first page), as Shopify
    checks them: with page_info, no filter but limit and fields."""
    try:
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 250:
            raise ValueError
    except ValueError:
        raise _BadRequest(b'{"errors": {"limit": "must be between 1 and 250"}}') from None
    if "page_info" not in query:
        return limit, None
    if set(query) - {"page_info", "limit", "fields"}:
        raise _BadRequest(b'{"errors": {"page_info": "only limit and fields may go with page_info"}}')
    try:
        return limit, _untoken(query["page_info"])
    except (ValueError, TypeError):
        raise _BadRequest(b'{"errors": {"page_info": "Invalid value."}}') from None


def _json_answer(status: int, value: Any) -> tuple[int, bytes, dict[str, str]]:
    return status, (json.dumps(value).encode() if value is not None else b""), {}


def _token(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode().rstrip("=")


def _untoken(text: str) -> dict[str, Any]:
    padded = text + "=" * (-len(text) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(value, dict):
        raise ValueError("not a page token")
    return value


@dataclass
class Listed:
    """An order as the marketplace keeps it: its id, when it last changed, and its documents."""

    id: str
    updated: datetime
    order: dict[str, Any]                       # Shopify: the order; Amazon: the getOrders header
    items: list[dict[str, Any]] = field(default_factory=list)     # Amazon: OrderItems
    address: dict[str, Any] | None = None                          # Amazon: ShippingAddress
    captured: bool = False                      # Shopify: an authorized payment was captured since


class Marketplace:
    def __init__(self, *, kind: str, token: str = "secret-token", api_version: str = "2024-01",
                 marketplace_id: str = "ATVPDKIKX0DER", location_id: int = 655441491,
                 capture_on_fulfilment: bool = True) -> None:
        """``capture_on_fulfilment``: Shopify's "capture automatically when the entire order is fulfilled"
        (else the shop captures an authorized payment by hand: :meth:`capture`)."""
        if kind not in ("shopify", "amazon", "woocommerce"):
            raise ValueError(f"a marketplace is 'shopify', 'amazon' or 'woocommerce', not {kind!r}")
        self.kind, self.token, self.api_version, self.marketplace_id = kind, token, api_version, marketplace_id
        self.location_id = location_id          # Shopify: the shop's one location
        self.capture_on_fulfilment = capture_on_fulfilment
        self.products: list[dict[str, Any]] = []    # what add_product put on sale, in the order it came
        self.inventory: dict[str, int] = {}         # available to sell, by SKU
        self.orders: dict[str, Listed] = {}
        self.requests: list[str] = []           # every request's path and query, as it came
        self.received: list[tuple[str, str, Any]] = []   # what the OMS told it: method, path, body (JSON or text)
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}    # Shopify, by order id
        self.refunds: dict[str, list[dict[str, Any]]] = {}         # Shopify and WooCommerce, by order id
        self.notes: dict[str, list[dict[str, Any]]] = {}           # WooCommerce, by order id
        self.feeds: list[dict[str, Any]] = []       # Amazon: {"feedType", "content", "feedId", "issues"}
        self.adjustments: dict[str, dict[str, Any]] = {}           # Amazon: by MerchantAdjustmentItemID
        self._uploads: dict[str, bytes | None] = {}
        self._upload_types: dict[str, str] = {}     # Amazon: the content type each upload address is signed for
        self._ids = 9000
        self.delay = 0.0
        self._fail = 0
        self._clock = datetime(2026, 12, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what it holds --------------------------------------------------------------------------------
    def _tick(self) -> datetime:
        self._clock += timedelta(seconds=1)     # one second apart: the order of updates is the order of times
        return self._clock

    def add(self, order: dict[str, Any], *, items: list[dict[str, Any]] | None = None,
            address: dict[str, Any] | None = None) -> str:
        """Put an order on the marketplace (Shopify: an order object; Amazon: a getOrders header, its items
        and address); its id."""
        with self._lock:
            at = self._tick()
            if self.kind == "shopify":
                oid = str(order["id"])
                order = {**order, "updated_at": _iso(at)}
            elif self.kind == "woocommerce":
                oid = str(order["id"])
                order = {**order, "date_modified_gmt": _iso(at).rstrip("Z")}
            else:
                oid = str(order["AmazonOrderId"])
                order = {**order, "LastUpdateDate": _iso(at)}
            self.orders[oid] = Listed(oid, at, order, list(items or []), address)
            return oid

    def capture(self, oid: str) -> None:
        """Shopify: the shop captures an order's authorized payment (by hand, or as it fulfils the order); the
        order reads ``paid`` now, and its transactions show the capture."""
        with self._lock:
            self._capture(self.orders[oid])

    def _capture(self, listed: Listed) -> None:
        listed.captured = True
        self._touch(listed, financial_status="paid")

    def change(self, oid: str, **fields: Any) -> None:
        """Change an order's fields at the marketplace (a cancellation, a new address): it is updated now."""
        with self._lock:
            listed = self.orders[oid]
            listed.updated = self._tick()
            listed.order = {**listed.order, **fields}
            self._stamp(listed)

    def _stamp(self, listed: Listed) -> None:
        stamp = {"shopify": "updated_at", "woocommerce": "date_modified_gmt"}.get(self.kind, "LastUpdateDate")
        listed.order[stamp] = _iso(listed.updated).rstrip("Z") if self.kind == "woocommerce" else _iso(listed.updated)

    def _touch(self, listed: Listed, **fields: Any) -> None:
        """The marketplace changed an order because of what the OMS told it (its lock held)."""
        listed.updated = self._tick()
        listed.order = {**listed.order, **fields}
        self._stamp(listed)

    def add_product(self, sku: str, quantity: int = 0, *, product_id: int | None = None,
                    variant_id: int | None = None, inventory_item_id: int | None = None,
                    tracked: bool = True) -> dict[str, Any]:
        """Put a SKU on sale with ``quantity`` available (``inventory[sku]``); its record, ids filled in.

        Shopify: a variant ``variant_id`` of the product ``product_id`` (variants given one product_id are one
        product's), its inventory item ``inventory_item_id``, ``tracked`` or not. WooCommerce: a simple product
        ``product_id``, or with ``variant_id`` the variation of that id of the variable product ``product_id``;
        ``tracked``: its ``manage_stock``. Amazon: a listing of the SKU. Ids not given are made up."""
        with self._lock:
            record: dict[str, Any] = {"sku": sku, "tracked": tracked}
            if self.kind == "shopify":
                record.update(product_id=product_id or self._next_id(), variant_id=variant_id or self._next_id(),
                              inventory_item_id=inventory_item_id or self._next_id())
            elif self.kind == "woocommerce":
                record.update(product_id=product_id or self._next_id(), variant_id=variant_id)
            self.products.append(record)
            self.inventory[sku] = quantity
            return record

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def fail(self, times: int = 1) -> None:
        """The next ``times`` requests answer 503 (the marketplace is down)."""
        with self._lock:
            self._fail = times

    # -- answering ------------------------------------------------------------------------------------
    def _answer(self, method: str, path: str, headers: Mapping[str, str],
                body: bytes = b"") -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.requests.append(path)
            if self._fail > 0:
                self._fail -= 1
                return 503, b'{"errors": "Service Unavailable"}', {}
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if method != "GET":
            try:
                sent: Any = json.loads(body) if body and not url.path.startswith(UPLOADS) else body.decode()
            except (ValueError, UnicodeDecodeError):
                return 400, b'{"errors": "the body is not JSON"}', {}
            with self._lock:
                self.received.append((method, url.path, sent))
        else:
            sent = None
        if self.kind == "shopify":
            if headers.get("x-shopify-access-token") != self.token:
                return 401, b'{"errors": "[API] Invalid API key or access token"}', {}
            prefix = f"{SHOPIFY_PREFIX}{self.api_version}/"
            if url.path == f"{prefix}orders.json" and method == "GET":
                return self._shopify(url.path, query)
            if url.path == f"{prefix}products.json" and method == "GET":
                return self._shopify_products(url.path, query)
            if url.path == f"{prefix}inventory_levels.json" and method == "GET":
                with self._lock:
                    return _json_answer(*answers.shopify_levels(self, query))
            if not url.path.startswith(prefix):
                return 404, b'{"errors": "Not Found"}', {}
            with self._lock:
                return _json_answer(*answers.shopify(self, method, url.path[len(prefix):], sent))
        if self.kind == "woocommerce":
            expected = "Basic " + base64.b64encode(self.token.encode()).decode()
            if headers.get("authorization") != expected:
                return 401, json.dumps({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot "
                                        "list resources.", "data": {"status": 401}}).encode(), {}
            with self._lock:
                if url.path == answers.WOO_PRODUCTS and method == "GET":
                    status, value, extra = answers.woocommerce_products(self, query)
                    return status, json.dumps(value).encode(), extra
                return _json_answer(*answers.woocommerce(self, method, url.path, sent))
        if url.path.startswith(UPLOADS):
            # The upload address is signed for its document and its content type: it takes no credential.
            with self._lock:
                return _json_answer(*answers.amazon_upload(self, method, url.path, sent,
                                                           headers.get("content-type", "")))
        if headers.get("x-amz-access-token") != self.token:
            return 403, json.dumps({"errors": [{"code": "Unauthorized", "message": "Access to requested resource "
                                                "is denied."}]}).encode(), {}
        if method != "GET":
            with self._lock:
                return _json_answer(*answers.amazon(self, method, url.path, sent))
        return self._amazon(url.path, query)

    def _page(self, since: datetime | None, after: tuple[str, str] | None, limit: int) -> tuple[list[Listed], bool]:
        """Orders updated at or after ``since``, in (updated, id) order, after the last one a page ended on."""
        with self._lock:
            ordered = sorted(self.orders.values(), key=lambda o: (o.updated, o.id))
        if since is not None:
            ordered = [o for o in ordered if o.updated >= since]
        if after is not None:
            ordered = [o for o in ordered if (_iso(o.updated), o.id) > after]
        return ordered[:limit], len(ordered) > limit

    def _shopify(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        try:
            limit, state = _shopify_paging(query)
        except _BadRequest as bad:
            return bad.answer
        if state is not None:
            try:
                since = _parse_iso(state["since"]) if state.get("since") else None
                after = (str(state["after"][0]), str(state["after"][1]))
            except (ValueError, KeyError, IndexError, TypeError):
                return 400, b'{"errors": {"page_info": "Invalid value."}}', {}
        else:
            try:
                since = _parse_iso(query["updated_at_min"]) if query.get("updated_at_min") else None
            except ValueError:
                return 400, b'{"errors": {"updated_at_min": "Invalid value."}}', {}
            after = None
        page, more = self._page(since, after, limit)
        headers: dict[str, str] = {}
        if more:
            last = page[-1]
            info = _token({"since": _iso(since) if since else None, "after": [_iso(last.updated), last.id]})
            headers["Link"] = f'<{self.url}{path}?{urlencode({"limit": limit, "page_info": info})}>; rel="next"'
        return 200, json.dumps({"orders": [o.order for o in page]}).encode(), headers

    def _shopify_products(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """The shop's products with their variants, by id, in pages of ``limit`` (``page_info`` as for orders)."""
        try:
            limit, state = _shopify_paging(query)
        except _BadRequest as bad:
            return bad.answer
        after = 0
        if state is not None:
            try:
                after = int(state["after"])
            except (ValueError, KeyError, TypeError):
                return 400, b'{"errors": {"page_info": "Invalid value."}}', {}
        with self._lock:
            products = [p for p in answers.shopify_products(self) if p["id"] > after]
        page, more = products[:limit], len(products) > limit
        fields = [f for f in query.get("fields", "").split(",") if f]
        shown = [{k: v for k, v in p.items() if not fields or k in fields} for p in page]
        headers: dict[str, str] = {}
        if more:
            args = {"limit": limit, "page_info": _token({"after": page[-1]["id"]}),
                    **({"fields": query["fields"]} if fields else {})}
            headers["Link"] = f'<{self.url}{path}?{urlencode(args)}>; rel="next"'
        return 200, json.dumps({"products": shown}).encode(), headers

    def _amazon(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        rest = path[len(AMAZON_ORDERS):].strip("/") if path.startswith(AMAZON_ORDERS) else None
        if rest is None:
            return 404, b'{"errors": [{"code": "NotFound", "message": "Resource not found"}]}', {}
        if rest:
            oid, _, what = rest.partition("/")
            listed = self.orders.get(oid)
            if listed is None or what not in ("orderItems", "address"):
                return 404, json.dumps({"errors": [{"code": "InvalidInput",
                                                    "message": f"Invalid order id {oid}"}]}).encode(), {}
            if what == "orderItems":
                return 200, json.dumps({"payload": {"AmazonOrderId": oid, "OrderItems": listed.items}}).encode(), {}
            return 200, json.dumps({"payload": {"AmazonOrderId": oid,
                                                "ShippingAddress": listed.address or {}}}).encode(), {}
        try:
            limit = int(query.get("MaxResultsPerPage", "100"))
            if not 1 <= limit <= 100:
                raise ValueError
        except ValueError:
            return 400, b'{"errors": [{"code": "InvalidInput", "message": "MaxResultsPerPage is 1 to 100"}]}', {}
        if "NextToken" in query:
            try:
                state = _untoken(query["NextToken"])
                since = _parse_iso(state["since"]) if state.get("since") else None
                after = (str(state["after"][0]), str(state["after"][1]))
            except (ValueError, KeyError, IndexError, TypeError):
                return 400, b'{"errors": [{"code": "InvalidInput", "message": "Invalid NextToken"}]}', {}
        else:
            if query.get("MarketplaceIds") != self.marketplace_id:
                return 400, b'{"errors": [{"code": "InvalidInput", "message": "MarketplaceIds is required"}]}', {}
            try:
                since = _parse_iso(query["LastUpdatedAfter"]) if query.get("LastUpdatedAfter") else None
            except ValueError:
                return 400, b'{"errors": [{"code": "InvalidInput", "message": "Invalid LastUpdatedAfter"}]}', {}
            after = None
        page, more = self._page(since, after, limit)
        payload: dict[str, Any] = {"Orders": [o.order for o in page]}
        if more:
            last = page[-1]
            payload["NextToken"] = _token({"since": _iso(since) if since else None,
                                           "after": [_iso(last.updated), last.id]})
        return 200, json.dumps({"payload": payload}).encode(), {}

    # -- running --------------------------------------------------------------------------------------
    def start(self) -> Self:
        market = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                market._handle(self)

            def do_POST(self) -> None:
                market._handle(self)

            def do_PUT(self) -> None:
                market._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._stop.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"marketplace-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        sent = h.rfile.read(length) if length else b""
        status, body, extra = self._answer(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, sent)
        if self.delay:
            self._stop.wait(self.delay)
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass    # the OMS gave up waiting

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "the marketplace is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"
