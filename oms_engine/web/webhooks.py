"""What the core checks of a channel webhook before the adapter's signature and the intake see it.

Every signed delivery carries two headers besides the adapter's signature:

``X-OMS-Timestamp``
    when the sender signed it, in Unix seconds. A delivery more than
    ``tolerance`` seconds (default 300) away from the OMS's clock, either way,
    is refused: a captured delivery cannot be replayed later.
``X-OMS-Delivery``
    an id the sender chooses, unique per delivery (1-128 visible ASCII
    characters, a UUID say). An id seen in the last ``2 x tolerance`` seconds
    is refused (409), so a delivery cannot be replayed inside the window
    either. A sender that retries must send a new timestamp and signature but
    may keep the id: a retry of a delivery that was stored is then refused
    as already received, which is what the sender needs to know.

The adapter's ``verify`` covers both headers in its signature (the JSON
channel signs ``f"{timestamp}.{delivery}.".encode() + body``), so neither can
be changed without the secret.

Each channel has a token bucket (``rate`` deliveries a second, up to
``burst`` at once; per process): past it the answer is 429 with
``Retry-After``. Only authentic, fresh deliveries take a token, and a
replay gives its token back, so nobody without the secret can use up a
channel's allowance.

Whether a delivery id was seen is decided where it is stored: the id is
claimed (a unique row) in the transaction that stores the raw payload, so it
is remembered exactly when the delivery is stored, and two copies racing in
one batch, two batches or two server processes store once.

A refused delivery stores nothing, not even its raw payload.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..storage.db import Database, insert_rows
from ..storage.models import WebhookDelivery
from .errors import ApiError

TIMESTAMP_HEADER = "X-OMS-Timestamp"
DELIVERY_HEADER = "X-OMS-Delivery"
SIGNATURE_CHALLENGE = {"WWW-Authenticate": 'Signature realm="oms-webhooks"'}

# WebhookDelivery.delivery_id is String(128); visible ASCII keeps ids safe to log and to sign.
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")
# Ten digits reach the year 2286; a longer number is no timestamp (and int() of it costs time).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class WebhookPolicy:
    """How strict the core is with webhooks; ``create_app(webhooks=...)`` and ``oms serve`` options set it."""

    tolerance: int = 300      # seconds a delivery's timestamp may differ from the OMS's clock, either way
    rate: float = 10.0        # deliveries a second per channel, sustained
    burst: int = 20           # deliveries per channel at once, after a quiet spell

    def __post_init__(self) -> None:
        if self.tolerance < 1:
            raise ValueError("webhook tolerance must be at least 1 second")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("webhook rate must be a positive number of deliveries a second")
        if self.burst < 1:
            raise ValueError("webhook burst must be at least 1")

    @property
    def remembered(self) -> timedelta:
        # A delivery received at r had |r - t| <= tolerance, and a replay stays fresh until
        # t + tolerance <= r + 2 x tolerance: its id must be kept that long.
        return timedelta(seconds=2 * self.tolerance)


def epoch_seconds(now: datetime) -> int:
    """The OMS's naive-UTC clock reading as Unix seconds."""
    return int(now.replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Delivery:
    timestamp: int
    delivery_id: str


def read_headers(headers: Mapping[str, str]) -> Delivery:
    """The timestamp and delivery id of a webhook: 401 when absent, 400 when malformed (naming the header)."""
    timestamp, delivery_id = headers.get(TIMESTAMP_HEADER), headers.get(DELIVERY_HEADER)
    for name, value in ((TIMESTAMP_HEADER, timestamp), (DELIVERY_HEADER, delivery_id)):
        if not value:
            raise ApiError(401, f"webhook signature is missing or invalid: no {name} header",
                           headers=SIGNATURE_CHALLENGE)
    assert timestamp is not None and delivery_id is not None
    if not _TIMESTAMP.fullmatch(timestamp):
        raise ApiError(400, f"header {TIMESTAMP_HEADER} must be the signing time in Unix seconds, "
                            f"got '{timestamp[:40]}'")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise ApiError(400, f"header {DELIVERY_HEADER} must be 1 to 128 visible ASCII characters")
    return Delivery(int(timestamp), delivery_id)


def check_fresh(delivery: Delivery, now: datetime, policy: WebhookPolicy) -> None:
    skew = delivery.timestamp - epoch_seconds(now)
    if abs(skew) > policy.tolerance:
        when = "in the future" if skew > 0 else "old"
        raise ApiError(401, f"webhook timestamp is {abs(skew)} s {when}, past the tolerance of "
                            f"{policy.tolerance} s: sign each delivery when it is sent, and keep the clock right",
                       headers=SIGNATURE_CHALLENGE)


class RateLimiter:
    """A token bucket per key, refilled by the monotonic clock (real time, whatever the OMS's clock says)."""

    def __init__(self, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._monotonic = rate, burst, monotonic
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a token was taken; otherwise the seconds until one will be there."""
        with self._lock:
            now = self._monotonic()
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def give_back(self, key: str) -> None:
        """Return a token taken for something that turned out not to count (a replay)."""
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), self._monotonic()))
            self._buckets[key] = (min(float(self.burst), tokens + 1), then)


def forget(db: Database, channel: str, delivery_id: str) -> None:
    """Undo a claim whose delivery was not stored, so the sender's retry is not taken for a replay."""
    with db.session() as s:
        s.execute(delete(WebhookDelivery).where(WebhookDelivery.channel == channel,
                                                WebhookDelivery.delivery_id == delivery_id))


def replay_error(channel: str, delivery_id: str) -> ApiError:
    return ApiError(409, f"delivery '{delivery_id}' of channel '{channel}' was already received; a replay is refused",
                    delivery=delivery_id)


class WebhookGate:
    """Freshness, replays and the rate limit; the adapter's ``verify`` checks the signature in between.

    A delivery takes a turn of its channel's rate (:meth:`take_turn`) before it
    is queued, and is claimed (:meth:`claim_all_in`) in the transaction that stores
    its raw payload; a replay found there gives its turn back.
    """

    PRUNE_EVERY = timedelta(seconds=1)

    def __init__(self, policy: WebhookPolicy, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.limiter = RateLimiter(policy.rate, policy.burst, monotonic)
        self._pruned_at: datetime | None = None

    def take_turn(self, channel: str) -> None:
        """429 past the channel's rate."""
        wait = self.limiter.take(channel)
        if wait:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"too many webhooks for channel '{channel}': at most {self.policy.rate:g} a second "
                                f"(bursts of {self.policy.burst}); retry in {retry_after} s",
                           headers={"Retry-After": str(retry_after)})

    def claim_all_in(self, s: Session, channel: str, deliveries: Sequence[tuple[str, datetime]]) -> list[bool]:
        """Remember the deliveries ``(id, received at)`` in this transaction: per delivery True, or False when
        its id is remembered already (stored in the window, or an earlier delivery of the same batch).

        One look and one insert for the batch. Another process may insert one of the ids between the two:
        the insert then fails on the unique key and the caller runs the transaction again (orders/intake.py).
        """
        if deliveries:
            self._prune(s, max(at for _, at in deliveries))
        ids = {d for d, _ in deliveries}
        taken = set(s.scalars(select(WebhookDelivery.delivery_id).where(WebhookDelivery.channel == channel,
                                                                          WebhookDelivery.delivery_id.in_(ids))))
        claimed: list[bool] = []
        rows: list[dict[str, object]] = []
        for delivery_id, at in deliveries:
            claimed.append(delivery_id not in taken)
            if claimed[-1]:
                taken.add(delivery_id)
                rows.append({"channel": channel, "delivery_id": delivery_id, "received_at": at})
        insert_rows(s, WebhookDelivery, rows)
        return claimed

    def _prune(self, s: Session, now: datetime) -> None:
        # Deliveries past the window go a second's worth at a time (by the indexed received_at), so the
        # table never holds much more than the window and the deletion is not paid for every batch. Timed
        # by the OMS's clock, like the window itself.
        if self._pruned_at is not None and timedelta(0) <= now - self._pruned_at < self.PRUNE_EVERY:
            return
        s.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < now - self.policy.remembered))
        self._pruned_at = now
