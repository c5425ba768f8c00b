"""The journal of accepted messages: shared by every journal object (process) on the file, whole lines only, kept
short by compaction that the other readers follow."""

from __future__ import annotations

from pathlib import Path

from oms_plugins.senders.journal import AcceptedJournal


def test_what_one_writes_the_other_sees_with_its_content(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    a, b = AcceptedJournal(path), AcceptedJournal(path)
    assert not b.taken("<m1>", "d1")
    a.record("<m1>", "d1")
    assert b.taken("<m1>", "d1") and not b.taken("<m1>", "other")
    b.record("<m2>", "d2")
    a.sync()
    assert a.taken("<m2>", "d2")
    assert path.read_text() == "<m1> d1\n<m2> d2\n"


def test_a_torn_line_is_skipped_and_the_next_line_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    path.write_text("<m1> d1\n<m2> d", encoding="utf-8")      # a process killed mid-write
    j = AcceptedJournal(path)
    assert j.taken("<m1>", "d1") and not j.taken("<m2>", "d2")
    j.record("<m3>", "d3")
    assert path.read_text() == "<m1> d1\n<m2> d\n<m3> d3\n"
    assert AcceptedJournal(path).taken("<m3>", "d3") and not AcceptedJournal(path).taken("<m2>", "d2")


def test_compaction_keeps_the_newest_and_other_readers_follow(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    writer, reader = AcceptedJournal(path, keep=5), AcceptedJournal(path, keep=5)
    for i in range(10):
        writer.record(f"<m{i}>", f"d{i}")
    assert reader.taken("<m0>", "d0")
    writer.record("<m10>", "d10")             # past twice keep: rewritten with the newest five
    assert path.read_text().splitlines() == [f"<m{i}> d{i}" for i in range(6, 11)]
    assert not reader.taken("<m0>", "d0") and reader.taken("<m10>", "d10")
    reader.record("<m11>", "d11")             # appends to the new file, not the one renamed away
    assert writer.taken("<m11>", "d11") and path.read_text().splitlines()[-1] == "<m11> d11"
