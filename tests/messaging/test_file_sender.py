"""The file senders deliver each notification once, whichever processes deliver it.

A worker that dies after its sender wrote a batch but before the batch was
recorded as sent leaves those messages pending; another worker claims them and
delivers them again. The sender must see the other process's lines and leave
those messages out: two real processes here, interleaved step by step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from oms_engine.engine import OMS
from oms_engine.messaging.outbox import Status
from oms_engine.plugin.contracts import Notification
from oms_engine.storage.models import OutboxMessage
from oms_plugins.senders.files import FileSender
from tests.support import build_oms, order_json, payload

# A sender in a process of its own, driven line by line: "send 1,2,3", "flush"; it answers "ok".
DRIVER = textwrap.dedent('''
    import sys
    from pathlib import Path
    from oms_engine.plugin.contracts import Notification
    from oms_plugins.senders.files import FileSender

    sender = FileSender(sys.argv[2], Path(sys.argv[1]))
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "send":
            for i in arg.split(","):
                sender.send(Notification(int(i), "N-" + i, sys.argv[2], "someone", "t", "", "body " + i))
        elif cmd == "flush":
            sender.flush()
        print("ok", flush=True)
''')


class Process:
    def __init__(self, directory: Path, medium: str) -> None:
        self.medium = medium
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(directory), medium], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, command: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok", f"the sender process failed on {command!r}"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0


@pytest.fixture(params=["sms", "email"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    a, b = Process(tmp_path, request.param), Process(tmp_path, request.param)
    yield a, b
    a.close()
    b.close()


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_two_processes_delivering_the_same_messages_write_each_once(tmp_path: Path,
                                                                    two: tuple[Process, Process]) -> None:
    a, b = two
    # B has delivered before (it has read the file), then A delivers a batch: A dies before recording it
    a("send 1")
    a("flush")
    b("send 2")
    b("flush")
    a("send 3,4,5")
    a("flush")
    # ... so B claims 3..5 again, with 6 and 7; and A, asked for 8 and for 4 once more, flushes last
    b("send 3,4,5,6,7")
    a("send 8,4")
    b("flush")
    a("flush")
    ids = ids_in(tmp_path / f"{a.medium}.jsonl")
    assert sorted(ids) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_a_torn_last_line_is_skipped_and_the_next_lines_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "sms.jsonl"
    path.write_text('{"id": 1, "order": "N-1", "to": "x", "template": "t", "subject": "", "body": "b"}\n'
                    '{"id": 2, "order": "N-2", "to"', encoding="utf-8")   # a process killed mid-write
    sender = FileSender("sms", tmp_path)
    for i in (1, 2, 3):
        sender.send(Notification(i, f"N-{i}", "sms", "13800000000", "t", "", f"body {i}"))
    sender.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"id": 2, "order": "N-2", "to"'            # left as it was, on a line of its own
    assert [json.loads(line)["id"] for line in lines[2:]] == [2, 3]  # 2 is not there: sent again; 1 was


def test_a_worker_that_dies_after_delivering_leaves_nothing_to_deliver_twice(tmp_path: Path, sqlite_url: str) -> None:
    """Two OMS instances share the outbox files, as two workers do; one delivers a batch and its transaction
    never commits (the process died), so the other delivers the same messages again."""
    first = build_oms(tmp_path, sqlite_url)
    second = OMS(first.config, clock=first.clock)   # the second worker: its own senders and their view of the file
    try:
        first.intake.ingest("json", payload(order_json("D-0")))
        second.pipeline.run_until_idle()      # the second worker has delivered before: it has read the file
        results = first.intake.ingest("json", payload(*[order_json(f"D-{i}", customer=f"C-D{i}")
                                                        for i in range(1, 6)]))
        first.pipeline.run_until_idle()
        # ... but the first one died before its batch was recorded as sent: put the rows back as pending.
        numbers = [r.number for r in results]
        with first.db.session() as s:
            s.execute(update(OutboxMessage).where(OutboxMessage.order_number.in_(numbers),
                                                  OutboxMessage.kind == "notification")
                      .values(status=Status.PENDING.value, attempts=0, sent_at=None))
        second.pipeline.run_until_idle()
        with first.db.read() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "notification")).all()
        assert rows and all(m.status == "sent" for m in rows)
        ids = ids_in(tmp_path / "outbox" / "sms.jsonl")
        assert sorted(ids) == sorted(m.id for m in rows if m.target == "sms")
    finally:
        first.close()
        second.close()
