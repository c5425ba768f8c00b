"""A warehouse's WMS spoken to in JSON over HTTP (docs/connectors.md, "wms_json").

A document::

    POST {url}/documents                      Content-Type: application/json
    Idempotency-Key: oms-msg-17               X-Correlation-Id: 17
    X-OMS-Timestamp: 1793610000               X-OMS-Signature: sha256=<hex>

    {"type": "sales_order", "id": "oms-msg-17", "data": {"order_number": "100001", ...}}

answered ``{"id": "oms-msg-17", "status": "accepted", "reference": "..."}`` (or ``"duplicate"``); a
callback, signed by the WMS (X-WMS-Timestamp, X-WMS-Signature), mirrors a document::

    {"type": "order_status", "id": "CB-1", "data": {"order_number": "100001", "status": "SHIPPED", ...}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from oms_engine import CallbackEvent, hookimpl, read_json

from .wms_http import MAX_CALLBACK_BYTES, HttpWms, events_from


class JsonWms(HttpWms):
    name = "wms_json"
    content_type = "application/json"

    def __init__(self, name: str = "wms_json", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name

    def encode(self, doc_type: str, key: str, data: Mapping[str, Any]) -> bytes:
        return json.dumps({"type": doc_type, "id": key, "data": data}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")

    def decode_answer(self, body: bytes) -> dict[str, Any]:
        answer = _object(body, "answer")
        if not isinstance(answer.get("status"), str):
            raise ValueError(f"the answer has no 'status' (got {sorted(answer)})")
        return answer

    def decode_callback(self, body: bytes) -> tuple[dict[str, Any], bool]:
        if len(body) > MAX_CALLBACK_BYTES:
            raise ValueError(f"the callback is over {MAX_CALLBACK_BYTES} bytes")
        return _object(body, "callback"), False

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        # One handed over as JSON through the integration API (POST /api/callbacks/wms_json) is the object itself.
        if isinstance(payload, Mapping) and "body" not in payload and "type" in payload:
            return events_from(payload)
        return super().parse_callback(payload)


def _object(body: bytes, what: str) -> dict[str, Any]:
    if not body.strip():
        raise ValueError(f"the {what} is empty")
    try:
        value = read_json(body)
    except ValueError as exc:   # JsonRejected included: says what and where
        raise ValueError(f"the {what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} must be a JSON object, got {type(value).__name__}")
    return value


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(JsonWms())
