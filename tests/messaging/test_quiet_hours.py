"""Quiet hours: an SMS due at night waits until the morning, holding back nothing else of its order."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.clock import SimulatedClock
from oms_engine.config import ConfigError, QuietHours
from oms_engine.messaging.notifications import quiet_until
from oms_engine.storage.models import OutboxMessage
from tests.support import build_oms, order_json, payload
from tests.support.pipeline import sent_files

QUIET = {"start": "21:00", "end": "08:00", "timezone": "Asia/Shanghai", "media": ["sms"]}


@pytest.mark.parametrize(("utc", "until"), [
    (datetime(2026, 11, 2, 12, 59), None),                          # 20:59 in Shanghai
    (datetime(2026, 11, 2, 13, 0), datetime(2026, 11, 3, 0, 0)),    # 21:00: until 08:00 the next day
    (datetime(2026, 11, 2, 18, 30), datetime(2026, 11, 3, 0, 0)),   # 02:30
    (datetime(2026, 11, 2, 23, 59), datetime(2026, 11, 3, 0, 0)),   # 07:59
    (datetime(2026, 11, 3, 0, 0), None),                            # 08:00
])
def test_quiet_hours_cross_midnight_in_the_local_time(utc: datetime, until: datetime | None) -> None:
    assert quiet_until(utc, QuietHours(**QUIET)) == until


def test_quiet_hours_within_one_day_and_across_a_change_of_summer_time() -> None:
    day = QuietHours(start="12:00", end="14:00", timezone="Europe/Berlin")
    assert quiet_until(datetime(2026, 7, 1, 10, 30), day) == datetime(2026, 7, 1, 12, 0)   # 12:30 CEST
    assert quiet_until(datetime(2026, 7, 1, 12, 0), day) is None                            # 14:00 CEST
    night = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")
    # 23:30 on the Saturday before the clocks go back: 07:00 on Sunday is 06:00 UTC, no longer 05:00
    assert quiet_until(datetime(2026, 10, 24, 21, 30), night) == datetime(2026, 10, 25, 6, 0)


def test_an_sms_queued_at_night_waits_for_the_morning_and_holds_back_no_email(tmp_path: Path,
                                                                             sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, quiet_hours=QUIET)
    try:
        assert isinstance(oms.clock, SimulatedClock)
        oms.clock.advance_to(datetime(2026, 11, 2, 14, 0))     # 22:00 in Shanghai
        [paid] = oms.intake.ingest("json", payload(order_json("Q-1")))
        oms.pipeline.run_until_idle()
        oms.commands.cancel(paid.number, actor="test", reason="changed my mind")
        oms.pipeline.run_until_idle()
        sent = sent_files(oms)
        # the cancellation's e-mail went at once; the payment's SMS waits for 08:00 (00:00 UTC)
        assert [r["template"] for r in sent["email"] if r["order"] == paid.number] == ["cancelled"]
        assert [r for r in sent["sms"] if r["order"] == paid.number] == []
        with oms.db.session() as s:
            [sms] = s.scalars(select(OutboxMessage).where(OutboxMessage.order_number == paid.number,
                                                          OutboxMessage.target == "sms"))
            assert (sms.status, sms.available_at) == ("pending", datetime(2026, 11, 3, 0, 0))
        oms.clock.advance_to(datetime(2026, 11, 3, 0, 0) - timedelta(seconds=1))
        oms.pipeline.run_until_idle()
        assert [r for r in sent_files(oms)["sms"] if r["order"] == paid.number] == []
        oms.clock.advance_to(datetime(2026, 11, 3, 0, 0))
        oms.pipeline.run_until_idle()
        assert [r["template"] for r in sent_files(oms)["sms"] if r["order"] == paid.number] == ["order_paid"]
    finally:
        oms.close()


def test_an_unknown_time_zone_is_refused_in_the_config(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"quiet_hours\.timezone: .*unknown time zone 'Mars/Olympus'"):
        build_oms(tmp_path, sqlite_url, quiet_hours={**QUIET, "timezone": "Mars/Olympus"})


def test_the_quiet_hours_of_the_rules_page_are_a_config_an_oms_starts_with(tmp_path: Path, sqlite_url: str) -> None:
    import re

    import yaml

    from tests.support import ROOT
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if b.startswith("quiet_hours:")]
    oms = build_oms(tmp_path, sqlite_url, **yaml.safe_load(block))
    try:
        assert oms.config.quiet_hours == QuietHours(**QUIET)
    finally:
        oms.close()
