"""Every request in docs/api.md, sent to a real server, answers the status the page says."""

from __future__ import annotations

import re

import pytest

from oms_engine.engine import OMS
from tests.support import ROOT, order_json, payload
from tests.support.web import ADMIN, INTEGRATION, RULES_ADMIN, SUPPORT, VIEWER, ApiServer

DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```http\n(.*?)```", DOC, re.S)
# operator is support's new name: the test server's support token is configured under the old one, an alias.
TOKENS = {"viewer": VIEWER, "support": SUPPORT, "operator": SUPPORT, "admin": ADMIN, "integration": INTEGRATION,
          "rules_admin": RULES_ADMIN}


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0] for b in BLOCKS])
def test_each_example_answers_as_documented(sqlite_oms: OMS, api: ApiServer, block: str) -> None:
    results = sqlite_oms.intake.ingest("json", payload(order_json("DOC-OK"), order_json("DOC-HELD",
                                                                                         customer="C-BAD")))
    sqlite_oms.pipeline.run_until_idle()
    numbers = {"order": results[0].number, "held": results[1].number}
    head, _, rest = block.partition("\n\n")
    lines = head.splitlines()
    expect = next(int(m.group(1)) for line in block.splitlines() if (m := re.match(r"# expect (\d{3})", line)))
    method, path = lines[0].split(" ", 1)
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line and not line.startswith("#"))
    token = headers.pop("Authorization", "").removeprefix("Bearer ")
    body_lines = [line for line in (rest if rest else "").splitlines() if not line.startswith("#")]
    body = re.sub(r"\{(order|held)\}", lambda m: numbers[m.group(1)], "\n".join(body_lines)).strip()
    reply = api.request(method, re.sub(r"\{(order|held)\}", lambda m: numbers[m.group(1)], path),
                        token=TOKENS.get(token), body=body.encode() if body else None, headers=headers)
    assert reply.status == expect, (block, reply.body)
    # Every answer is JSON but those the page says are CSV or text; a refusal is a problem document (RFC 9457).
    said = re.search(rf"# expect {expect}: (text/[a-z]+)", block)
    expected_type = (said.group(1) if said
                     else "application/problem+json" if reply.status >= 400 else "application/json")
    assert reply.headers["content-type"].startswith(expected_type)
    if expected_type == "text/csv":
        assert reply.body.decode().startswith("id,at,warehouse,sku,kind,")
    if expected_type == "text/plain":
        assert "# TYPE oms_orders gauge" in reply.body.decode()
    if "Idempotency-Key" in headers:
        again = api.request(method, re.sub(r"\{(order|held)\}", lambda m: numbers[m.group(1)], path),
                            token=TOKENS.get(token), body=body.encode() if body else None, headers=headers)
        assert (again.status, again.body, again.headers["idempotent-replayed"]) == (reply.status, reply.body, "true")
