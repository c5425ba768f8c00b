"""Pulling orders from Shopify's REST Admin API and Amazon's Selling Partner API (Orders v0), by cursor.

Each function is an adapter's ``pull(account, cursor, http)`` (oms_engine PulledPage, channels/pulling.py):
it fetches one page after ``cursor`` and answers the page's bodies as the channel sent them (the adapter's
``parse`` reads them, as it reads a webhook's) and the cursor after it. A cursor is JSON text of the adapter's
own: the time the current sweep started from (``since``), the channel's token for the next page, and the latest
update seen in the sweep; when a sweep reaches the last page, the next one starts from that latest update.
Both APIs filter on "updated at or after", so the orders updated at that very second come again: they are
known to intake by then (the same content is a duplicate; changed content an update), never stored twice.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from oms_engine import PulledPage

SHOPIFY_VERSION = "2024-01"
# Shopify's cursor pagination: the next page's address in a Link header.
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
MAX_ANSWER_BYTES = 20_000_000
ERROR_TEXT = 300


class ChannelApiError(RuntimeError):
    pass


def _cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        raise ChannelApiError(f"the stored cursor {cursor[:80]!r} is not this adapter's") from None
    if not isinstance(value, dict):
        raise ChannelApiError(f"the stored cursor {cursor[:80]!r} is not this adapter's")
    return value


def _get(http: httpx.Client, url: str, headers: dict[str, str], what: str,
         params: dict[str, Any] | None = None) -> httpx.Response:
    try:
        resp = http.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        raise ChannelApiError(f"{what}: no answer within the account's timeout") from None
    except httpx.HTTPError as exc:
        raise ChannelApiError(f"{what}: {type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        wait = resp.headers.get("Retry-After")
        raise ChannelApiError(f"{what}: {resp.status_code} {resp.reason_phrase}"
                              + (f" (retry after {wait} s)" if wait else "")
                              + f": {resp.text[:ERROR_TEXT]}")
    if len(resp.content) > MAX_ANSWER_BYTES:
        raise ChannelApiError(f"{what}: the answer is over {MAX_ANSWER_BYTES:,} bytes")
    return resp


def _json(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise ChannelApiError(f"{what}: the answer is not JSON: {resp.text[:ERROR_TEXT]!r}") from None


def _instant(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo is not None else None


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two ISO 8601 times, in UTC ("...Z"): a shop writes its own offset, which moves with summer
    time, so the texts are compared as instants."""
    times = [t for t in (_instant(x) for x in (a, b) if x) if t is not None]
    return max(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else None


def _need(account: Any, what: str) -> None:
    if not account.url:
        raise ChannelApiError(f"channel account '{account.name}' has no url: set channel_accounts.{account.name}.url")
    if not account.token:
        raise ChannelApiError(f"channel account '{account.name}' has no API credential: set "
                              f"channel_accounts.{account.name}.token_env and that variable ({what})")


def shopify_pull(account: Any, cursor: str | None, http: httpx.Client) -> PulledPage:
    """One page of a Shopify shop's orders, oldest update first (``GET /admin/api/<version>/orders.json``)."""
    _need(account, "a Shopify Admin API access token")
    state = _cursor(cursor)
    version = str(account.settings.get("api_version") or SHOPIFY_VERSION)
    base = f"{account.url}/admin/api/{version}/orders.json"
    headers = {"X-Shopify-Access-Token": account.token, "Accept": "application/json"}
    since = state.get("since") or account.settings.get("since")
    if state.get("page"):
        resp = _get(http, base, headers, "Shopify orders", {"limit": account.page_size, "page_info": state["page"]})
    else:
        params = {"status": "any", "limit": account.page_size, "order": "updated_at asc"}
        if since:
            params["updated_at_min"] = since
        resp = _get(http, base, headers, "Shopify orders", params)
    data = _json(resp, "Shopify orders")
    orders = data.get("orders") if isinstance(data, dict) else None
    if not isinstance(orders, list):
        raise ChannelApiError(f"Shopify orders: the answer has no list of orders: {resp.text[:ERROR_TEXT]!r}")
    seen = state.get("seen")
    for o in orders:
        if isinstance(o, dict) and isinstance(o.get("updated_at"), str):
            seen = _later(seen, o["updated_at"])
    found = _NEXT.search(resp.headers.get("Link", ""))
    if found:
        page = httpx.URL(found.group(1)).params.get("page_info")
        if not page:
            raise ChannelApiError(f"Shopify orders: the next page's link has no page_info: {found.group(1)!r}")
        return PulledPage((resp.content,) if orders else (), json.dumps({"since": since, "page": page, "seen": seen}),
                          more=True)
    if not orders:
        return PulledPage((), None)
    return PulledPage((resp.content,), json.dumps({"since": _later(seen, since), "page": None, "seen": None}))


def amazon_pull(account: Any, cursor: str | None, http: httpx.Client) -> PulledPage:
    """One page of an Amazon seller's orders (``getOrders``), each joined with its ``getOrderItems`` and
    ``getOrderAddress`` answers: the page's bodies are those answers, as Amazon sent them."""
    _need(account, "a Login with Amazon access token")
    markets = account.settings.get("marketplace_ids")
    if isinstance(markets, list):
        markets = ",".join(str(m) for m in markets)
    if not isinstance(markets, str) or not markets:
        raise ChannelApiError(f"channel account '{account.name}' needs settings.marketplace_ids (e.g. ATVPDKIKX0DER)")
    state = _cursor(cursor)
    headers = {"x-amz-access-token": account.token, "Accept": "application/json"}
    base = f"{account.url}/orders/v0/orders"
    since = state.get("since") or account.settings.get("since") or "2000-01-01T00:00:00Z"
    if state.get("next"):
        params = {"NextToken": state["next"], "MarketplaceIds": markets}
    else:
        params = {"MarketplaceIds": markets, "LastUpdatedAfter": since,
                  "MaxResultsPerPage": min(account.page_size, 100)}
    resp = _get(http, base, headers, "Amazon getOrders", params)
    data = _json(resp, "Amazon getOrders")
    payload = data.get("payload") if isinstance(data, dict) else None
    orders = payload.get("Orders") if isinstance(payload, dict) else None
    if not isinstance(orders, list):
        raise ChannelApiError(f"Amazon getOrders: the answer has no payload.Orders: {resp.text[:ERROR_TEXT]!r}")
    bodies = [resp.content]
    seen = state.get("seen")
    for o in orders:
        oid = o.get("AmazonOrderId") if isinstance(o, dict) else None
        if not isinstance(oid, str) or not oid:
            continue    # the adapter says what is wrong with it
        if isinstance(o.get("LastUpdateDate"), str):
            seen = _later(seen, o["LastUpdateDate"])
        token: str | None = None
        while True:     # an order's items come in pages of their own
            item_params = {"NextToken": token} if token else None
            items = _get(http, f"{base}/{oid}/orderItems", headers, f"Amazon getOrderItems {oid}", item_params)
            bodies.append(items.content)
            more = _json(items, f"Amazon getOrderItems {oid}")
            token = more.get("payload", {}).get("NextToken") if isinstance(more, dict) else None
            if not token:
                break
        address = _get(http, f"{base}/{oid}/address", headers, f"Amazon getOrderAddress {oid}")
        bodies.append(address.content)
    # One payload per page: the adapter joins a page's header, items and address by AmazonOrderId.
    joined = b"[" + b",".join(bodies) + b"]"
    following = payload.get("NextToken") if isinstance(payload, dict) else None
    if following:
        return PulledPage((joined,) if orders else (), json.dumps({"since": since, "next": following, "seen": seen}),
                          more=True)
    if not orders:
        return PulledPage((), None)
    return PulledPage((joined,), json.dumps({"since": _later(seen, since), "next": None, "seen": None}))
