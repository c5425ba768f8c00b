"""What an outside system has already taken, remembered across processes of one machine.

A sender that cannot ask its receiver "do you have message X?" (an SMTP relay
cannot be asked) writes down each message the receiver accepted, the moment
it accepted it, and looks before sending. The outbox records a batch as sent
only when the whole batch is done (pipeline/outbox.py), so without this a
worker killed in the middle of a batch would have every message it had
already delivered sent again by the worker that takes the batch over; with
it, only the one message in flight when it died (the receiver may have taken
it and the answer never came back).

One line per message, ``<key> <digest>\\n``, appended under an exclusive
``flock``; readers take whole lines only, so a line being written, or torn by
a killed process, is never half read (a torn line is skipped: that message
is sent again). The digest is of the message's content: an entry whose key
comes back with other content (the database recreated, its ids counted from
1 again, next to an old journal) does not stop the new message.

The file keeps about the last ``keep`` messages: past twice that, the next
writer rewrites it with the newest ``keep`` and renames it into place, and
every process reading it starts over on the new file. The outbox retries a
message within hours, so that is plenty to cover what a crashed worker left.

``flock`` works between processes of one machine (and on network file
systems that honour it). Workers on several machines each keep their own
journal: what one of them accepted, another may send again.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

KEEP = 20_000


class AcceptedJournal:
    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path, self.keep = path, keep
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        self._lines = 0
        self._offset = 0
        self._file_id: tuple[int, int] | None = None

    def taken(self, key: str, digest: str) -> bool:
        """Whether the message ``key`` with this content was accepted before, by any process here."""
        with self._lock:
            if not self.path.exists():
                return False
            fd = os.open(self.path, os.O_RDONLY)
            try:
                self._catch_up(fd)
            finally:
                os.close(fd)
            return self._seen.get(key) == digest

    def record(self, key: str, digest: str) -> None:
        """Write down that the message ``key`` was accepted (survives this process; see :meth:`sync`)."""
        if " " in key or "\n" in key or " " in digest or "\n" in digest:
            raise ValueError(f"a journal key and digest are single words, got {key!r} {digest!r}")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._open_locked()
            try:
                self._catch_up(fd)
                size = os.fstat(fd).st_size
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                _write_all(fd, (("\n" if torn else "") + f"{key} {digest}\n").encode("utf-8"))
                self._seen[key] = digest
                self._lines += 1
                self._offset = os.fstat(fd).st_size
                if self._lines > 2 * self.keep:
                    self._compact(fd)
            finally:
                os.close(fd)     # closing releases the lock, even if the process dies before

    def sync(self) -> None:
        """Make what was written durable against a power cut too (a killed process loses nothing anyway)."""
        with self._lock:
            if not self.path.exists():
                return
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open_locked(self) -> int:
        """The journal, open for appending and locked; the file at the path now, not one compacted away
        while this process waited for the lock."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            st, now = os.fstat(fd), _stat(self.path)
            if now is not None and (st.st_dev, st.st_ino) == now:
                return fd
            os.close(fd)

    def _catch_up(self, fd: int) -> None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._file_id or st.st_size < self._offset:
            self._file_id, self._offset, self._seen, self._lines = (st.st_dev, st.st_ino), 0, {}, 0
        if st.st_size <= self._offset:
            return
        chunk = os.pread(fd, st.st_size - self._offset, self._offset)
        whole = chunk[:chunk.rfind(b"\n") + 1]     # a line still being written (or torn) waits
        for line in whole.split(b"\n"):
            parts = line.decode("utf-8", "replace").split(" ")
            if len(parts) == 2 and all(parts):
                self._seen[parts[0]] = parts[1]
                self._lines += 1
        self._offset += len(whole)

    def _compact(self, fd: int) -> None:
        """Keep the newest ``keep`` lines, in a new file renamed into place (under the lock of the old one)."""
        size = os.fstat(fd).st_size
        lines = [ln for ln in os.pread(fd, size, 0).split(b"\n") if ln.count(b" ") == 1][-self.keep:]
        tmp = self.path.with_name(self.path.name + ".new")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(out, b"".join(ln + b"\n" for ln in lines))
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, self.path)
        self._file_id = None      # read the new file from its start next time


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
