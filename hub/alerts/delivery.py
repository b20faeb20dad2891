"""Delivering notifications through the registry's outbox (``alert_deliveries``).

Each notification gets one delivery row per channel (``webhook:<name>``, ``mqtt``). A worker
per channel claims due rows under a lease (``store.claim_deliveries``), so several evaluator
processes never send one row at the same time; it makes one attempt per row and records the
result. Retries go through the table: a failed row becomes due again later, so they survive a
restart, and a receiver that is down does not hold up the others for long.

Retry schedule of a webhook: its ``WebhookConfig`` (delay before attempt k+1 is
``min(max_delay_s, base_delay_s * 2**(k-1))`` times a jitter in [0.5, 1), at most
``attempts`` attempts, none started later than ``deadline_s`` after the notification was
stored; the first attempt is always made). MQTT: the same shape with 0.5 s doubling to 10 s,
for up to an hour (the broker being away is the usual reason).

Notifications stored without delivery rows (an operator resolving an alert in the web app;
an evaluator with other channels) get them from ``ensure_deliveries``, run every tick.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from hub.alerts.codec import utc
from hub.alerts.model import Notification
from hub.alerts.mqttout import AlertPublisher
from hub.alerts.notify import WebhookConfig, WebhookSender, mqtt_messages
from hub.alerts.rules import Rule, RuleSet
from hub.alerts.store import claim_deliveries, mark_delivered, mark_failed
from hub.alerts.tables import DeliveryRow, NotificationRow
from hub.registry.db import Registry

log = logging.getLogger("dcor.hub.alerts.delivery")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    ok: bool
    error: str = ""
    retryable: bool = False


class Channel(Protocol):
    name: str
    lease_s: float  # longer than one attempt can take

    def wants(self, n: Notification) -> bool: ...

    def send(self, n: Notification, rule: Rule | None) -> SendOutcome: ...

    def retry_at(self, attempts: int, stored_at: datetime, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up."""
        ...

    def close(self) -> None: ...


class WebhookChannel:
    def __init__(self, config: WebhookConfig, secret: bytes,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self.name = f"webhook:{config.name}"
        self.lease_s = config.timeout_s + 10.0
        # One attempt per claim: the retries are the table's.
        self._sender = WebhookSender(config.model_copy(update={"attempts": 1}), secret,
                                     jitter=jitter)

    def wants(self, n: Notification) -> bool:
        return self.config.wants(n)

    def send(self, n: Notification, rule: Rule | None) -> SendOutcome:
        result = self._sender.send(n, rule)
        return SendOutcome(result.ok, result.error, result.retryable)

    def retry_at(self, attempts: int, stored_at: datetime, now: datetime) -> datetime | None:
        if attempts >= self.config.attempts:
            return None
        at = now + timedelta(seconds=self._sender.delay(attempts))
        if (at - stored_at).total_seconds() > self.config.deadline_s:
            return None
        return at

    def close(self) -> None:
        self._sender.close()


class MqttChannel:
    name = "mqtt"

    def __init__(self, publisher: AlertPublisher, timeout_s: float = 5.0,
                 deadline_s: float = 3600.0, jitter: Callable[[], float] = random.random
                 ) -> None:
        self.publisher = publisher
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.lease_s = timeout_s * 4 + 10.0  # a few desks' messages per notification
        self._jitter = jitter

    def wants(self, n: Notification) -> bool:
        return True

    def send(self, n: Notification, rule: Rule | None) -> SendOutcome:
        for msg in mqtt_messages(n, rule):
            ok, error = self.publisher.publish(msg, self.timeout_s)
            if not ok:  # the desks already sent get it again: receivers dedupe by id
                return SendOutcome(False, error, True)
        return SendOutcome(True)

    def retry_at(self, attempts: int, stored_at: datetime, now: datetime) -> datetime | None:
        delay = min(10.0, 0.5 * 2 ** (attempts - 1)) * (0.5 + self._jitter() / 2)
        at = now + timedelta(seconds=delay)
        return None if (at - stored_at).total_seconds() > self.deadline_s else at

    def close(self) -> None:
        self.publisher.stop()


# --- the outbox ------------------------------------------------------------------------------

def start_cursor(session: Session, now: datetime, backfill_s: float = 3600.0) -> int:
    """Where ``ensure_deliveries`` starts: before the notifications of the last
    ``backfill_s`` (ones stored while no evaluator ran still get delivered)."""
    since = now - timedelta(seconds=backfill_s)
    first = session.scalar(select(func.min(NotificationRow.seq))
                           .where(NotificationRow.created_at > since))
    if first is not None:
        return int(first) - 1
    last = session.scalar(select(func.max(NotificationRow.seq)))
    return int(last or 0)


def ensure_deliveries(session: Session, channels: Sequence[str], after_seq: int,
                      now: datetime, limit: int = 500) -> int:
    """Give notifications after ``after_seq`` a row for every channel they lack; returns the
    new cursor (the last seq looked at)."""
    rows = session.execute(select(NotificationRow.seq, NotificationRow.id)
                           .where(NotificationRow.seq > after_seq)
                           .order_by(NotificationRow.seq).limit(limit)).all()
    if not rows:
        return after_seq
    if channels:
        ids = [r.id for r in rows]
        have = {(r.notification_id, r.channel) for r in session.execute(
            select(DeliveryRow.notification_id, DeliveryRow.channel)
            .where(DeliveryRow.notification_id.in_(ids),
                   DeliveryRow.channel.in_(list(channels))))}
        for _seq, nid in rows:
            for channel in channels:
                if (nid, channel) in have:
                    continue
                try:
                    with session.begin_nested():
                        session.add(DeliveryRow(notification_id=nid, channel=channel,
                                                status="pending", next_at=now))
                except IntegrityError:
                    pass  # another evaluator added it meanwhile
    return int(rows[-1].seq)


def mark_skipped(session: Session, notification_id: str, channel: str) -> None:
    """The channel does not take this notification (another desk's receiver)."""
    session.execute(update(DeliveryRow).where(
        DeliveryRow.notification_id == notification_id, DeliveryRow.channel == channel
    ).values(status="skipped", lease_until=None))


def _claim(session: Session, channel: str, worker: str, now: datetime, lease_s: float,
           limit: int) -> list[tuple[Notification, int, datetime]]:
    """Claim due rows: (notification, attempts made so far, when it was stored)."""
    claimed = claim_deliveries(session, channel, worker, now, lease_s=lease_s, limit=limit)
    if not claimed:
        return []
    info = {r.notification_id: (r.attempts, r.created_at) for r in session.execute(
        select(DeliveryRow.notification_id, DeliveryRow.attempts, NotificationRow.created_at)
        .join(NotificationRow, NotificationRow.id == DeliveryRow.notification_id)
        .where(DeliveryRow.channel == channel,
               DeliveryRow.notification_id.in_([n.id for n in claimed])))}
    out = []
    for n in claimed:
        attempts, created = info.get(n.id, (0, now))
        out.append((n, int(attempts), utc(created) or now))
    return out


@dataclass
class DeliveryCounters:
    sent: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    skipped: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Sends one channel's due deliveries; a thread named ``dcor.alerts.deliver:<channel>``.

    ``nudge()`` wakes it at once (the evaluator stored something new); otherwise it looks
    every ``poll_s`` for retries and for rows other processes stored.
    """

    def __init__(self, registry: Registry, channel: Channel, worker_id: str,
                 rules: Callable[[], RuleSet], *, batch: int = 10, poll_s: float = 1.0,
                 now: Callable[[], datetime] = _utc_now) -> None:
        self.registry = registry
        self.channel = channel
        self.worker_id = worker_id
        self.rules = rules
        self.batch = batch
        self.poll_s = poll_s
        self.now = now
        self.counters = DeliveryCounters()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Claim and attempt one batch; returns how many rows were handled."""
        now = self.now()
        with self.registry.session() as s:
            work = _claim(s, self.channel.name, self.worker_id, now,
                          self.channel.lease_s * self.batch, self.batch)
        by_id = self.rules().by_id
        for n, attempts, stored_at in work:
            self._deliver(n, attempts, stored_at, by_id.get(n.rule_id))
        return len(work)

    def _deliver(self, n: Notification, attempts: int, stored_at: datetime,
                 rule: Rule | None) -> None:
        name = self.channel.name
        if not self.channel.wants(n):
            with self.registry.session() as s:
                mark_skipped(s, n.id, name)
            self.counters.skipped += 1
            return
        try:
            outcome = self.channel.send(n, rule)
        except Exception as exc:  # a broken channel must not stop the worker
            log.exception("%s: sending %s failed", name, n.id)
            outcome = SendOutcome(False, f"{type(exc).__name__}: {exc}", True)
        now = self.now()
        with self.registry.session() as s:
            if outcome.ok:
                mark_delivered(s, n.id, name, now)
                self.counters.sent += 1
                return
            retry = self.channel.retry_at(attempts + 1, stored_at, now) if (
                outcome.retryable) else None
            mark_failed(s, n.id, name, now, outcome.error, retry)
        self.counters.failed_attempts += 1
        if retry is None:
            self.counters.given_up += 1
            log.error("%s: gave up on %s after %d attempts: %s", name, n.id, attempts + 1,
                      outcome.error)
        else:
            log.warning("%s: attempt %d of %s failed (%s); again at %s", name, attempts + 1,
                        n.id, outcome.error, retry.isoformat(timespec="seconds"))

    def nudge(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"dcor.alerts.deliver:{self.channel.name}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.channel.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.run_once() >= self.batch:
                    pass  # a full batch: there may be more due right away
            except SQLAlchemyError:
                log.exception("%s: the registry failed; trying again", self.channel.name)
                self._stop.wait(self.poll_s)
            except Exception:  # a bug must not end deliveries for good
                log.exception("%s: delivery round failed; trying again", self.channel.name)
                self._stop.wait(self.poll_s)
