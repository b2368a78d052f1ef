"""The audit writer: events reach the store (or the journal) before the user's answer goes out.

Requests hand their events to one writer thread and wait. The thread takes whatever has queued up and
appends it in one transaction (group commit), so the store's cost per request falls as load rises.
If the store fails, the batch is spooled to the journal and replayed once the store answers again;
if the journal fails too, the waiting requests get the error and fail closed.

Every ``checkpoint_seconds`` while events arrive, and when it stops, the writer takes a signed
checkpoint of the chain head and writes it outside the database (guard.audit.checkpoints).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from guard.audit import checkpoints
from guard.audit.checkpoints import CheckpointLog
from guard.audit.evidence import seal
from guard.audit.journal import Journal
from guard.audit.keys import AuditKeys
from guard.audit.store import AuditStore, StoredEvent

log = logging.getLogger("guard.audit")

_BATCH = 256
_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class PendingEvent:
    """An event record plus the original texts to keep as evidence (sealed before anything is written)."""

    record: dict[str, Any]
    evidence_texts: Sequence[str] | None = None
    thumbnails: tuple[bytes, ...] = ()  # the request's images, masked and small (guard.images.thumbnail)


class AuditUnavailable(Exception):
    """Neither the store nor the journal could keep an event: the request must fail closed."""


class AuditWriter:
    def __init__(self, open_store: Callable[[], AuditStore], journal: Journal,
                 keys: AuditKeys | None = None, evidence_days: float = 30.0,
                 checkpoint_log: CheckpointLog | None = None, checkpoint_seconds: float = 60.0) -> None:
        self._open_store = open_store
        self.journal = journal
        self.checkpoint_log = checkpoint_log or CheckpointLog.beside(journal.path)
        self.checkpoint_seconds = checkpoint_seconds
        self._checkpointed_length = -1
        self._next_checkpoint = 0.0
        self.keys = keys
        self.evidence_retention = timedelta(days=evidence_days)
        self.store: AuditStore | None = None
        self.store_error = ""
        self._queue: queue.Queue[tuple[list[PendingEvent], Future[None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="guard-audit-writer", daemon=True)
        self._next_retry = 0.0
        self._next_purge = 0.0

    # ------------------------------------------------------------ caller side

    def start(self) -> AuditWriter:
        """Open the store (or note that it is away), replay the journal, start the writer thread."""
        self.open()
        self._thread.start()
        return self

    def open(self) -> AuditWriter:
        """Open the store and replay the journal, without a thread: the caller calls ``keep`` itself.

        Raises ChainModeError when the key loaded does not fit the store (a keyed store and no key,
        or a keyless store and a key): a configuration mistake stops start-up.
        """
        self._connect()
        if self.store is not None and not self.store_error:
            self.store.check_writable()
        self._replay()
        return self

    @property
    def healthy(self) -> bool:
        """The store is reachable (events are not only spooled)."""
        return self.store is not None and not self.store_error

    def submit(self, events: Sequence[PendingEvent]) -> Future[None]:
        future: Future[None] = Future()
        if not self._thread.is_alive():
            future.set_exception(AuditUnavailable("the audit writer is not running"))
            return future
        self._queue.put((list(events), future))
        return future

    async def commit(self, events: Sequence[PendingEvent]) -> None:
        """Return once every event is in the store or the journal; raise AuditUnavailable otherwise."""
        await asyncio.wrap_future(self.submit(events))

    def commit_sync(self, events: Sequence[PendingEvent], timeout: float = 60.0) -> None:
        self.submit(events).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        self.checkpoint()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=_RETRY_SECONDS)
            except queue.Empty:
                self.housekeeping()
                continue
            if first is None:
                return
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._settle(batch, self.keep([events for events, _ in batch], fresh=True))
                    return
                batch.append(item)
            # Events reach this thread once (nothing is sent again): the store need not look them up.
            self._settle(batch, self.keep([events for events, _ in batch], fresh=True))
            self.housekeeping()

    def keep(self, batches: Sequence[Sequence[PendingEvent]], fresh: bool = False) -> AuditUnavailable | None:
        """Append the events of several requests in one transaction (or spool them to the journal).

        Returns None when all are kept, or the error every one of those requests must fail with.
        ``fresh``: none of these events was handed to a store before (``AuditStore.append``).
        """
        try:
            items = [self._stored(event) for events in batches for event in events]
        except Exception as e:  # sealing failed: nothing can be kept safely
            return AuditUnavailable(f"evidence could not be sealed ({e.__class__.__name__})")
        if self._store_ready():
            try:
                self.store.append(items, fresh)  # type: ignore[union-attr]
                return None
            except Exception as e:
                self._store_failed(e)
        try:
            self.journal.append(items)
        except OSError as e:
            log.error("audit events could not be stored or spooled (%s)", e.__class__.__name__)
            return AuditUnavailable("the audit store and the journal are both unavailable")
        return None

    @staticmethod
    def _settle(batch: list[tuple[list[PendingEvent], Future[None]]], error: Exception | None) -> None:
        for _, future in batch:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _stored(self, event: PendingEvent) -> StoredEvent:
        # Thumbnails are masked: kept without a key, for as long as evidence would be.
        expires = datetime.now(UTC) + self.evidence_retention
        if not event.evidence_texts or self.keys is None:
            return StoredEvent(event.record, None, expires if event.thumbnails else None, event.thumbnails)
        sealed = seal(event.evidence_texts, str(event.record["event_id"]), self.keys)
        return StoredEvent(event.record, sealed, expires, event.thumbnails)

    def _store_ready(self) -> bool:
        if self.store is not None and not self.store_error:
            return True
        if time.monotonic() < self._next_retry:
            return False
        self._connect()
        return self._replay()

    def _connect(self) -> None:
        try:
            if self.store is None:
                self.store = self._open_store()
            self.store_error = ""
        except Exception as e:
            self._store_failed(e)

    def _store_failed(self, error: Exception) -> None:
        if not self.store_error:
            log.error("audit store unavailable (%s); spooling events to %s", error.__class__.__name__,
                      self.journal.path)
        self.store_error = error.__class__.__name__
        self._next_retry = time.monotonic() + _RETRY_SECONDS

    def _replay(self) -> bool:
        """Move spooled events into the store; True when the journal is empty afterwards."""
        if self.store is None or self.store_error:
            return False
        items, lines = self.journal.pending()
        if not lines:
            return True
        try:
            added = self.store.append(items)
        except Exception as e:
            self._store_failed(e)
            return False
        self.journal.clear(lines)
        log.info("replayed %d spooled audit events into the store", added)
        return True

    def checkpoint(self) -> None:
        """Write a checkpoint of the chain head if it moved since the last one (never fails a request)."""
        self._next_checkpoint = time.monotonic() + self.checkpoint_seconds
        if self.store is None or self.store_error:
            return
        try:
            head = self.store.head()
            if head.length == self._checkpointed_length:
                return
            self.checkpoint_log.write(checkpoints.take(head.seq, head.length, head.hash, self.keys))
            self._checkpointed_length = head.length
        except Exception as e:
            log.error("audit checkpoint could not be written (%s)", e.__class__.__name__)

    def housekeeping(self) -> None:
        """Retry an absent store, checkpoint the head (each interval), purge expired evidence (hourly);
        run between batches."""
        if self.store_error:
            self._store_ready()
        now = time.monotonic()
        if now >= self._next_checkpoint:
            self.checkpoint()
        if self.store is not None and not self.store_error and now >= self._next_purge:
            self._next_purge = now + 3600
            try:
                self.store.purge()
            except Exception as e:
                self._store_failed(e)
