"""Every request in docs/api.md, sent to a real server, answers the status the page says."""

from __future__ import annotations

import re

import pytest

from oms_engine.engine import OMS
from tests.support import ROOT, order_json, payload
from tests.support.web import ADMIN, INTEGRATION, SUPPORT, VIEWER, ApiServer

DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```http\n(.*?)```", DOC, re.S)
TOKENS = {"viewer": VIEWER, "support": SUPPORT, "admin": ADMIN, "integration": INTEGRATION}


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
    # Every answer is JSON but the one the page says is CSV.
    expected_type = "text/csv" if f"# expect {expect}: text/csv" in block else "application/json"
    assert reply.headers["content-type"].startswith(expected_type)
    if expected_type == "text/csv":
        assert reply.body.decode().startswith("id,at,warehouse,sku,kind,")
