"""File senders for SMS and e-mail.

The file senders append one JSON line per message to
``<outbox_dir>/<medium>.jsonl``: the stand-in for an SMS gateway or SMTP
relay, with the same contract (idempotent on the message id, so a message
retried after a crash is not delivered twice). ``flush()`` fsyncs once per
outbox batch, before the batch is recorded as sent.
"""

from __future__ import annotations

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
        self._seen: set[int] | None = None
        self._lock = threading.Lock()
        self._fh: Any = None

    def _load_seen(self) -> set[int]:
        if self._seen is None:
            self._seen = set()
            if self.path.exists():
                with self.path.open(encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            self._seen.add(int(json.loads(line)["id"]))
                        except (ValueError, KeyError):
                            continue  # a torn last line from a crash: that message is resent
        return self._seen

    def send(self, notification: Notification) -> None:
        with self._lock:
            seen = self._load_seen()
            if notification.id in seen:
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            record = {"id": notification.id, "order": notification.order_number, "to": notification.recipient,
                      "template": notification.template, "subject": notification.subject, "body": notification.body}
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            seen.add(notification.id)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                # Closed after each batch so another process's lines are never interleaved mid-line.
                self._fh.close()
                self._fh = None


@hookimpl(trylast=True)
def oms_register_senders(register: Any, config: Any) -> None:
    directory = config.path(config.outbox_dir)
    register(FileSender("sms", directory))
    register(FileSender("email", directory))
