"""The audit writer in a process of its own: the proxy's event loop only hands events over.

Keeping an event (sealing its evidence, the chain link, the SQL transaction) costs about a
millisecond of CPU. In a thread of the proxy process that work competes with mitmproxy's event loop
for the interpreter lock, and the loop drives every connection; measured at 1 KB prompts it cost a
third of the proxy's throughput. Here an ``AuditWriter`` (group commit, journal, replay: all as
before) runs in a child process. The loop sends each request's events over a socket pair and awaits
the acknowledgement, so an answer still goes out only once its events are kept. The process has
one thread: no interpreter-lock hand-over between a reader and a writer.

If the writer process dies, the batches it had not acknowledged are sent again to its replacement:
the store skips events it already holds, so none is lost or doubled. A batch is sent at most twice;
when the replacement cannot keep it either, the waiting request fails closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import structlog

from guard import ipc
from guard.audit.checkpoints import CheckpointLog
from guard.audit.journal import Journal
from guard.audit.keys import AuditKeys
from guard.audit.logging import configure_logging, to_ecs
from guard.audit.store import AuditStore, ChainModeError
from guard.audit.writer import AuditUnavailable, AuditWriter, PendingEvent
from guard.fork_server import worker_context

log = logging.getLogger("guard.audit")

START_SECONDS = 60.0      # opening the store (and migrating it) takes a second or two
RESPAWN_PAUSE_SECONDS = 2.0
MAX_SENDS = 2             # a batch goes to a writer process at most this often
MAX_GROUP = 256           # batches kept in one transaction
HOUSEKEEPING_SECONDS = 5.0
# A batch's own header, inside that frame: its id, and whether this is its first send (a batch sent
# again may be in the store already; a first one is not, so the store need not look for it).
_BATCH = struct.Struct("!I?")


@dataclass(frozen=True)
class AuditSettings:
    """Everything the writer process needs to open the store and the journal (picklable)."""

    url: str
    node: str
    journal_path: str
    keys: AuditKeys | None = None
    evidence_days: float = 30.0
    checkpoint_path: str = ""          # "" : guard-audit-checkpoints.jsonl beside the journal
    checkpoint_seconds: float = 60.0


# ---------------------------------------------------------------- the writer process

def current_log_format() -> str:
    """The format this process's structlog writes (guard.audit.logging), for the writer process to match."""
    processors = structlog.get_config().get("processors", [])
    if to_ecs in processors:
        return "ecs"
    if any(isinstance(p, structlog.dev.ConsoleRenderer) for p in processors):
        return "console"
    return "json"


def _writer_main(conn: Connection, settings: AuditSettings, log_format: str = "json") -> None:
    """Open the store, say so, then keep what the proxy sends until its socket closes.

    One thread: it takes every batch that has arrived, keeps them all in one transaction (group
    commit), acknowledges each, and waits for more.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the proxy's; EOF tells us to stop
    configure_logging(fmt=log_format)  # checkpoints go to the stream the proxy's events go to, alike
    try:
        journal = Journal(settings.journal_path)
        writer = AuditWriter(lambda: AuditStore.open(settings.url, settings.keys, settings.node), journal,
                             settings.keys, settings.evidence_days,
                             CheckpointLog(settings.checkpoint_path) if settings.checkpoint_path else None,
                             settings.checkpoint_seconds).open()
    except ChainModeError as e:  # a key mismatch: its message names no secret and says what to do
        conn.send_bytes(pickle.dumps(("failed", str(e))))
        return
    except Exception as e:  # reported to the proxy by type (a message could hold a URL's password)
        conn.send_bytes(pickle.dumps(("failed", e.__class__.__name__)))
        return
    conn.send_bytes(pickle.dumps(("ready", writer.store_error)))
    try:
        while True:
            if not conn.poll(HOUSEKEEPING_SECONDS):
                writer.housekeeping()
                continue
            arrived: list[tuple[int, bool, list[PendingEvent]]] = []
            while len(arrived) < MAX_GROUP and (not arrived or conn.poll(0)):
                message = conn.recv_bytes()
                batch_id, first = _BATCH.unpack_from(message)
                arrived.append((batch_id, first, pickle.loads(memoryview(message)[_BATCH.size:])))
            error = writer.keep([events for _, _, events in arrived], fresh=all(f for _, f, _ in arrived))
            reason = str(error) if error else None
            for batch_id, _, _ in arrived:
                conn.send_bytes(pickle.dumps((batch_id, reason, writer.store_error)))
            writer.housekeeping()  # time-gated: a checkpoint each interval even under steady load
    except (EOFError, OSError):
        pass  # the proxy closed its end (shutdown) or is gone: everything received was kept
    finally:
        writer.checkpoint()
        if writer.store is not None:
            writer.store.close()


# ---------------------------------------------------------------- the proxy side

@dataclass(eq=False)
class _Batch:
    batch_id: int
    events: bytes  # pickled once; each send adds the batch header
    future: asyncio.Future[None]
    sends: int = 0


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection  # blocking, used until the loop attaches (then its dup is the loop's)
    control: socket.socket  # our own handle on the socket, to shut it down from any thread
    channel: ipc.FrameChannel | None = None  # the loop's end, once attached
    ready: bool = False
    gone: bool = False
    sent: list[_Batch] = field(default_factory=list)


class AuditProcess:
    """``AuditWriter``'s interface (``start``, ``commit``, ``healthy``, ``close``), kept in a child process.

    ``commit`` is awaited from the proxy's event loop; ``start`` and ``close`` block (start-up, shutdown).
    """

    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings
        self.store_error = ""
        self._mp = worker_context()  # forked from the fork server: never a clone of the proxy's threads
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Batch] = {}  # sent or to be sent, not yet acknowledged
        self._loop: asyncio.AbstractEventLoop | None = None
        self._child: _Child | None = None
        self._closed = False

    # ------------------------------------------------------------ start and state

    def start(self, timeout: float = START_SECONDS) -> AuditProcess:
        """Start the writer process and wait until it has opened the store (or begun spooling)."""
        child = self._spawn()
        if not child.conn.poll(timeout):
            self._kill(child)
            raise AuditUnavailable(f"the audit writer process did not start within {timeout:.0f} s")
        try:
            status, detail = pickle.loads(child.conn.recv_bytes())
        except (EOFError, OSError):
            status, detail = "failed", "it exited"
        if status != "ready":
            self._kill(child)
            raise AuditUnavailable(f"the audit writer process could not start ({detail})")
        child.ready, self.store_error = True, str(detail)
        self._child = child
        return self

    @property
    def healthy(self) -> bool:
        """The writer process runs and reaches the store (events are not only spooled)."""
        child = self._child
        return child is not None and child.ready and not child.gone and not self.store_error

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None and not child.gone else None

    def _spawn(self) -> _Child:
        parent, child_end = self._mp.Pipe(duplex=True)
        process = self._mp.Process(target=_writer_main, args=(child_end, self.settings, current_log_format()),
                                   name="guard-audit-writer", daemon=True)
        process.start()
        child_end.close()
        return _Child(process, parent, socket.socket(fileno=os.dup(parent.fileno())))

    # ------------------------------------------------------------ commit (the event loop)

    async def commit(self, events: Sequence[PendingEvent]) -> None:
        """Return once every event is in the store or the journal; raise AuditUnavailable otherwise."""
        if self._closed:
            raise AuditUnavailable("the audit writer is not running")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            if self._child is not None:
                self._attach(self._child)
        elif self._loop is not loop:
            raise RuntimeError("an audit process serves the event loop that first used it")
        batch_id = next(self._ids)
        payload = pickle.dumps(list(events), protocol=pickle.HIGHEST_PROTOCOL)
        batch = _Batch(batch_id, payload, loop.create_future())
        self._waiting[batch_id] = batch
        self._send(batch)
        try:
            await batch.future
        finally:
            self._waiting.pop(batch_id, None)

    def _send(self, batch: _Batch) -> None:
        child = self._child
        if child is None or not child.ready or child.channel is None or child.gone:
            return  # sent when a writer process is ready (_flush)
        batch.sends += 1
        child.sent.append(batch)
        child.channel.send(_BATCH.pack(batch.batch_id, batch.sends == 1) + batch.events)

    def _flush(self) -> None:
        for batch in list(self._waiting.values()):
            if not batch.future.done() and batch.sends < MAX_SENDS:
                self._send(batch)

    def _attach(self, child: _Child) -> None:
        sock = socket.socket(fileno=os.dup(child.conn.fileno()))
        child.conn.close()
        assert self._loop is not None
        self._loop.create_task(self._connect(child, sock))

    async def _connect(self, child: _Child, sock: socket.socket) -> None:
        try:
            child.channel = await ipc.open_channel(sock, functools.partial(self._message, child),
                                                   functools.partial(self._lost, child))
        except OSError:
            sock.close()
            self._lost(child)
            return
        if child.ready:
            self._flush()

    def _message(self, child: _Child, frame: bytes) -> None:
        """One word of the writer process: its first (for a replacement), then acknowledgements.
        Raising here closes the channel, and the process is replaced (``_lost``)."""
        message = pickle.loads(frame)
        if not child.ready:
            status, detail = message
            if status != "ready":
                raise AuditUnavailable(str(detail))
            child.ready, self.store_error = True, str(detail)
            self._flush()
            return
        batch_id, error, self.store_error = message
        batch = self._waiting.get(batch_id)
        if batch is None or batch.future.done():
            return
        if batch in child.sent:
            child.sent.remove(batch)
        if error is None:
            batch.future.set_result(None)
        else:
            batch.future.set_exception(AuditUnavailable(error))

    def _lost(self, child: _Child) -> None:
        """The writer process stopped: replace it and send it what was not acknowledged."""
        if child.gone:
            return
        child.gone = True
        self._kill(child)
        if self._closed:
            self._fail_all("the audit writer was shut down")
            return
        if not child.ready:  # a replacement that could not start: nobody can keep these now
            self._fail_all("the audit writer process could not start")
        for batch in child.sent:
            if batch.sends >= MAX_SENDS and not batch.future.done():
                batch.future.set_exception(AuditUnavailable("the audit writer process stopped twice"))
        log.error("the audit writer process stopped; starting another")
        assert self._loop is not None
        self._loop.call_later(0.0 if child.ready else RESPAWN_PAUSE_SECONDS, self._replace)

    def _replace(self) -> None:
        if self._closed:
            return
        child = self._spawn()
        self._child = child
        self._attach(child)

    def _fail_all(self, why: str) -> None:
        for batch in list(self._waiting.values()):
            if not batch.future.done():
                batch.future.set_exception(AuditUnavailable(why))

    # ------------------------------------------------------------ stopping

    @staticmethod
    def _kill(child: _Child) -> None:
        """Kill and reap (in a thread: never block the loop)."""
        child.gone = True
        if child.process.is_alive():
            child.process.kill()
        child.control.close()
        threading.Thread(target=child.process.join, name="guard-audit-reaper", daemon=True).start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking events; the writer process commits what it holds and exits (then is reaped)."""
        self._closed = True
        child = self._child
        if child is None or child.gone:
            return
        child.gone = True
        with contextlib.suppress(OSError):
            child.control.shutdown(socket.SHUT_WR)  # end of input: the process finishes and exits
        child.process.join(timeout)
        if child.process.is_alive():
            log.error("the audit writer process did not finish within %.0f s; stopping it", timeout)
            child.process.kill()
            child.process.join()
        child.control.close()
        if not child.conn.closed:
            child.conn.close()
        self._fail_all("the audit writer was shut down")
