"""A rule's regular expression cannot stall the worker, whatever text a payload brings (RE2, linear time)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from oms_engine.rules.errors import RulesetInvalid
from oms_engine.rules.regex import MAX_TEXT, search
from tests.support import build_oms, copy_rules, order_json, payload
from tests.support.web import status_of

EVIL = '''
  - name: silly-pattern
    priority: 5
    when:
      customer.email: {matches: "^(a+)+$"}
    then:
      - hold: {reason: the e-mail is only a's}
'''


def test_the_nested_quantifier_from_the_report_is_answered_at_once_even_on_long_text() -> None:
    # Python's re needs over a minute for 30 a's and a '!', hours for 40: RE2 is linear in the text.
    assert search("^(a+)+$", "a" * 10_000) is True
    assert search("^(a+)+$", "a" * 40 + "!") is False
    assert search("^(a+)+$", "a" * (MAX_TEXT - 1) + "!") is False
    # Only the first MAX_TEXT characters of a text are searched.
    assert search("b", "a" * MAX_TEXT + "b") is False
    assert search("b", "a" * (MAX_TEXT - 1) + "b") is True


def test_an_order_whose_email_would_stall_a_backtracking_engine_is_screened_like_any(tmp_path: Path,
                                                                                     sqlite_url: str) -> None:
    rules = copy_rules(tmp_path)
    text = (rules / "blocking.yaml").read_text(encoding="utf-8")
    (rules / "blocking.yaml").write_text(text.replace("rules:\n", "rules:" + EVIL, 1), encoding="utf-8")
    oms = build_oms(tmp_path, sqlite_url, rules_dir=rules)
    try:
        evil = order_json("REGEX-1", customer="C-REGEX-1")
        evil["customer"]["email"] = "a" * 60 + "!"                     # type: ignore[index]
        plain = order_json("REGEX-2", customer="C-REGEX-2")
        plain["customer"]["email"] = "a" * 60                           # type: ignore[index]
        results = oms.intake.ingest("json", payload(evil, plain))
        done = threading.Event()

        def work() -> None:
            oms.pipeline.run_until_idle()
            done.set()
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        # Not a measure of speed: a backtracking engine would still be at it in an hour.
        assert done.wait(120), "the pipeline stalled on a regular expression"
        assert status_of(oms, results[0].number) == "dispatched"
        assert status_of(oms, results[1].number) == "on_hold"
    finally:
        oms.close()


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(a)\\1", "invalid escape sequence"),
    ("(?<=@)gmail", "invalid perl operator"),
    ("x(?=y)", "invalid perl operator"),
])
def test_a_pattern_that_cannot_be_searched_in_linear_time_is_refused_at_load(tmp_path: Path, sqlite_url: str,
                                                                             pattern: str, why: str) -> None:
    rules = copy_rules(tmp_path)
    text = (rules / "blocking.yaml").read_text(encoding="utf-8")
    rule = EVIL.replace('"^(a+)+$"', f'"{pattern}"')
    (rules / "blocking.yaml").write_text(text.replace("rules:\n", "rules:" + rule, 1), encoding="utf-8")
    with pytest.raises(RulesetInvalid) as refused:
        build_oms(tmp_path, sqlite_url, rules_dir=rules)
    message = str(refused.value)
    assert "blocking.yaml:" in message and "silly-pattern" in message
    assert "cannot be searched in linear time" in message and why in message
