"""File senders for SMS and e-mail.

The file senders append one JSON line per message to
``<outbox_dir>/<medium>.jsonl``: the stand-in for an SMS gateway or SMTP
relay, with the contract every sender keeps (oms_engine/plugin/contracts.py):
idempotent on the message id. A message is delivered again when a worker
dies after delivering it but before recording it as sent (another worker then
claims it), so the check has to hold across processes, and the file is the
only thing they share.

So ``send()`` only takes a message into the batch, and ``flush()`` (called
once per outbox batch, before the batch is recorded as sent) does the
delivery under an exclusive ``flock`` on the file: read what was appended
since this process last looked (other processes' lines), leave out the
messages already there, append the rest, fsync, and unlock. Two processes
never append at once, and each sees the other's lines before it writes.
A torn last line (a process killed mid-write) is skipped on reading, and the
next writer starts on a fresh line so its own lines stay whole.

``flock`` coordinates the processes of one machine. Workers on several
machines need what the file stands in for: a gateway that itself refuses a
message id it has seen.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

from oms_engine import Notification, hookimpl


class FileSender:
    def __init__(self, medium: str, directory: Path) -> None:
        self.name = f"file_{medium}"
        self.medium = medium
        self.path = directory / f"{medium}.jsonl"
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, Any]] = {}
        self._seen: set[int] = set()
        # How far this process has read the file, and which file it was (replaced: read it again).
        self._offset = 0
        self._file_id: tuple[int, int] | None = None

    def send(self, notification: Notification) -> None:
        with self._lock:
            if notification.id in self._seen or notification.id in self._pending:
                return
            self._pending[notification.id] = {
                "id": notification.id, "order": notification.order_number, "to": notification.recipient,
                "template": notification.template, "subject": notification.subject, "body": notification.body}

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, {}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                torn = self._catch_up(fd)
                lines = [json.dumps(r, ensure_ascii=False) + "\n" for i, r in pending.items() if i not in self._seen]
                if lines:
                    data = ("\n" if torn else "") + "".join(lines)
                    _write_all(fd, data.encode("utf-8"))
                    os.fsync(fd)
                    self._seen.update(i for i in pending if i not in self._seen)
                    self._offset = os.fstat(fd).st_size
            finally:
                # Closing the descriptor releases the lock too, even if the process dies in between.
                os.close(fd)

    def _catch_up(self, fd: int) -> bool:
        """Read the lines appended since the last look; True when the file ends in a torn line."""
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._file_id or st.st_size < self._offset:
            self._file_id, self._offset, self._seen = (st.st_dev, st.st_ino), 0, set()
        if st.st_size == self._offset:
            return False
        chunk = os.pread(fd, st.st_size - self._offset, self._offset)
        whole, _, rest = chunk.rpartition(b"\n")
        for line in whole.split(b"\n"):
            try:
                self._seen.add(int(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash: that message is not there, and is sent again
        self._offset = st.st_size
        return bool(rest)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@hookimpl(trylast=True)
def oms_register_senders(register: Any, config: Any) -> None:
    directory = config.path(config.outbox_dir)
    register(FileSender("sms", directory))
    register(FileSender("email", directory))
