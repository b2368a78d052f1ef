"""The inspection worker pool: engine work off the proxy's event loop, on the other cores.

One mitmproxy process drives all connections from one event loop. Inspection is CPU work, so it
runs in worker processes (each with its own engine, built once at start) and the loop only awaits
the result: a 50,000-character paste occupies one worker, not every user's connection.

The loop talks to each worker over its own socket pair, read and written by the loop itself
(``guard.ipc``: whole frames are cut in the loop's read callback), so a round trip costs one write
and one read callback. A process-pool executor
needs two helper threads and a cross-thread callback for the same, and those threads contend for
the interpreter lock with the proxy; measured at 1 KB prompts, that overhead was as large as the
inspection itself.

A worker that dies (killed, out of memory) fails only the request it held, and is replaced; one
that is still busy when its job's time limit runs out is killed and replaced, so a runaway
inspection cannot keep a worker for ever. The time limit counts inspection only: a job waiting in
the queue has a bound of its own (``queue_timeout``), so a busy minute does not time out prompts
that were never started.

Scheduling is fair between users: each user has a queue of their own, the queues are served in
turn, and no user holds more than ``user_share`` workers at once (one less than the pool, when it
has two or more), so one user's heavy prompts cannot starve everyone else.

With ``workers=0`` the engine runs in one thread of this process instead (tests, small installs).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import os
import pickle
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from guard import ipc
from guard.engine import ANALYSIS_CACHE_ENTRIES, Engine
from guard.fork_server import worker_context
from guard.formats.base import Extracts, GuardFormatError, ParsedRequest, UnreadableContent
from guard.images import ImageUnreadable, OcrText, ReadImage, read_text
from guard.policy import load_policy
from guard.verdict import Verdict

QUEUE_SECONDS = 60.0  # the longest a job may wait for a worker before it fails closed
START_SECONDS = 120.0  # building an engine takes about 2 s; a worker silent this long is broken
RESPAWN_PAUSE_SECONDS = 5.0


class WorkerLost(RuntimeError):
    """The worker inspecting a request died or was stopped; that request fails closed."""


class InspectionTimeout(TimeoutError):
    """A job overran its time limit in a worker, or waited longer than its queue limit for one."""


class InspectionError(RuntimeError):
    """The engine raised inside a worker (only the exception's type is passed back: no text)."""


# ---------------------------------------------------------------- the worker process

def _quiet_libraries() -> None:
    import logging

    for name in ("presidio-analyzer", "presidio-anonymizer", "jieba"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_engine(policy_path: str | None) -> Engine:
    _quiet_libraries()
    engine = Engine(load_policy(policy_path), cache_entries=ANALYSIS_CACHE_ENTRIES)
    engine.warm_up()
    return engine


def _engine_for(policy_path: str | None) -> Engine:
    """The fork server's warmed engine when it was built from this policy as it is now, else a new one."""
    from guard import worker_preload

    preloaded = worker_preload.ENGINE
    if preloaded is not None:
        policy = load_policy(policy_path)  # milliseconds; the file may have changed since the preload
        if (policy.source, policy.version) == (preloaded.policy.source, preloaded.policy.version):
            return preloaded
    return build_engine(policy_path)


@dataclass(frozen=True)
class ReadUpload:
    """A request body to extract in a worker: reading documents (PDF, Office) is CPU work like
    detection, bounded by the same time limit, and must never stall the proxy's event loop."""

    fmt: Extracts  # a request format, or websocket.MessageReader for one WebSocket message
    body: bytes
    content_type: str
    path: str


_Result = Verdict | ParsedRequest | OcrText | ImageUnreadable


def _run(engine: Engine, work: list[str] | ReadUpload | ReadImage, destination: str | None) -> _Result:
    """One job: texts to inspect, an upload to read, or an image to read (OCR is CPU work too, under
    the same limit).

    An image that cannot be read is an answer about the image, not a failure of the worker: the
    proxy applies the unreadable-content policy to it.
    """
    if isinstance(work, ReadUpload):
        return work.fmt.extract(work.body, work.content_type, work.path)
    if isinstance(work, ReadImage):
        try:
            return read_text(work.data, work.timeout)
        except ImageUnreadable as e:
            return e
    return engine.inspect_segments(work, destination)


def _worker_main(conn: Connection, policy_path: str | None) -> None:
    """Build the engine, say so, then inspect one job at a time until the proxy closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the proxy's to handle; EOF stops us
    try:
        engine = _engine_for(policy_path)
    except Exception as e:  # reported to the proxy, which refuses to start with this pool
        conn.send_bytes(pickle.dumps(("failed", f"{e.__class__.__name__}: {e}")))
        return
    conn.send_bytes(pickle.dumps(("ready", os.getpid())))
    while True:
        try:
            job_id, work, destination = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            result = _run(engine, work, destination)
            reply = pickle.dumps((job_id, True, result), protocol=pickle.HIGHEST_PROTOCOL)
        except GuardFormatError as e:  # names the part and the problem (unreadable, too large), never content
            reply = pickle.dumps((job_id, False, e))
        except Exception as e:  # the type only: an engine message could quote the prompt
            reply = pickle.dumps((job_id, False, e.__class__.__name__))
        conn.send_bytes(reply)


# ---------------------------------------------------------------- the proxy side

@dataclass
class _Job:
    job_id: int
    payload: bytes
    future: asyncio.Future[_Result]
    timeout: float
    user: str = ""                                  # whose queue it waits in
    queued: asyncio.TimerHandle | None = None       # fails the job if no worker takes it in time
    started: bool = False                           # a worker has it


class _Worker:
    """One worker process and the loop's end of its socket."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn  # blocking, used only until the worker has said it is ready
        self.channel: ipc.FrameChannel | None = None  # the loop's end, once attached
        self.job: _Job | None = None
        self.attached = False
        self.overran = False
        self.ready = False
        self.gone = False
        self.deadline: asyncio.TimerHandle | None = None


class InspectionPool:
    """Runs ``Engine.inspect_segments`` in worker processes; ``inspect`` is awaited from the event loop."""

    def __init__(self, policy_path: str | None, workers: int,
                 on_replace: Callable[[str], None] | None = None) -> None:
        self.workers = workers
        self.policy_path = policy_path
        self._on_replace = on_replace  # told "died" or "overran" when a worker is replaced (a metric)
        self._pending = 0
        self._closing = False
        self._mp = worker_context()  # the proxy's loop and threads must not be cloned
        # One queue per user, in turn order (a dict keeps insertion order: served users go last).
        self._queues: dict[str, collections.deque[_Job]] = {}
        self._running: collections.Counter[str] = collections.Counter()
        self.user_share = max(1, workers - 1)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pool: list[_Worker] = []
        if workers > 0:
            self._pool = [self._spawn() for _ in range(workers)]
        else:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-inspect")
            self._engine_ready = self._thread.submit(build_engine, policy_path)

    def _spawn(self) -> _Worker:
        parent, child = self._mp.Pipe(duplex=True)
        process = self._mp.Process(target=_worker_main, args=(child, self.policy_path),
                                   name="guard-inspection-worker", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        """Block until every worker has built its engine (start-up fails loudly if one cannot)."""
        if self._thread is not None:
            self._engine_ready.result(timeout)
            return
        for worker in self._pool:
            self._handshake(worker, timeout)

    @staticmethod
    def _handshake(worker: _Worker, timeout: float) -> None:
        if not worker.conn.poll(timeout):
            raise RuntimeError(f"an inspection worker did not start within {timeout:.0f} s")
        try:
            status, detail = pickle.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            raise RuntimeError("an inspection worker exited while starting") from None
        if status != "ready":
            raise RuntimeError(str(detail))
        worker.ready = True

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """The worker processes now serving (empty with ``workers=0``)."""
        return tuple(w.process.pid for w in self._pool if not w.gone and w.process.pid is not None)

    @property
    def pending(self) -> int:
        """Inspections submitted and not yet finished (the queue depth metric)."""
        return self._pending

    async def inspect(self, texts: Sequence[str], destination: str | None, timeout: float = 10.0, *,
                      user: str | None = None, queue_timeout: float = QUEUE_SECONDS) -> Verdict:
        """Inspect in a worker. ``timeout`` bounds one job's time in a worker: past it the worker is
        killed and replaced. ``queue_timeout`` bounds the wait for a worker. Jobs of one ``user``
        share that user's queue and share of the workers; without a user a job has a queue of its
        own. Both limits fail closed with ``InspectionTimeout``."""
        result = await self._submit(list(texts), destination, timeout, user, queue_timeout)
        if not isinstance(result, Verdict):
            raise InspectionError(f"a worker answered a {type(result).__name__} for an inspection")
        return result

    async def extract(self, fmt: Extracts, body: bytes, content_type: str, path: str,
                      timeout: float = 10.0, *, user: str | None = None,
                      queue_timeout: float = QUEUE_SECONDS) -> ParsedRequest:
        """``fmt.extract`` in a worker, under the same limits and the same fair share as an inspection.
        Format errors come back as themselves (unreadable, too large, malformed), so the caller answers
        with the reason."""
        result = await self._submit(ReadUpload(fmt, body, content_type, path), None, timeout, user,
                                    queue_timeout)
        if not isinstance(result, ParsedRequest):
            raise InspectionError(f"a worker answered a {type(result).__name__} for an upload")
        return result

    async def read_image(self, data: bytes, timeout: float = 10.0, *, user: str | None = None,
                         queue_timeout: float = QUEUE_SECONDS) -> OcrText:
        """OCR an image in a worker, in the user's queue and under the same limits as an inspection."""
        # Tesseract is stopped a little before the worker would be killed for overrunning.
        result = await self._submit(ReadImage(data, timeout * 0.9), None, timeout, user, queue_timeout)
        if isinstance(result, ImageUnreadable):
            raise UnreadableContent(f"image: {result}")
        if not isinstance(result, OcrText):
            raise InspectionError(f"a worker answered a {type(result).__name__} for an image")
        return result

    async def _submit(self, work: list[str] | ReadUpload | ReadImage, destination: str | None,
                      timeout: float, user: str | None, queue_timeout: float) -> _Result:
        if self._closing:
            raise WorkerLost("the inspection pool is closed")
        self._pending += 1
        try:
            if self._thread is not None:
                engine = await asyncio.wrap_future(self._engine_ready)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._thread, _run, engine, work, destination)
            self._attach(asyncio.get_running_loop())
            job_id = next(self._ids)
            payload = pickle.dumps((job_id, work, destination), protocol=pickle.HIGHEST_PROTOCOL)
            job = _Job(job_id, payload, asyncio.get_running_loop().create_future(), timeout,
                       user if user is not None else f"\0job-{job_id}")
            self._queues.setdefault(job.user, collections.deque()).append(job)
            self._dispatch()
            if not job.started:  # no worker free: it waits, within its own bound
                job.queued = self._running_loop.call_later(queue_timeout, self._waited_too_long, job)
            try:
                return await job.future
            except asyncio.CancelledError:
                self._abandon(job)
                raise
        finally:
            self._pending -= 1

    # ------------------------------------------------------------ the loop's side of the sockets

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connect the loop to each started worker's socket (once per worker, on first use)."""
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("an inspection pool serves the event loop that first used it")
        self._loop = loop
        for worker in self._pool:
            if worker.ready and not worker.attached and not worker.gone:
                self._open_streams(worker)

    @property
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the inspection pool has not been used from an event loop yet")
        return self._loop

    def _open_streams(self, worker: _Worker) -> None:
        worker.attached = True
        sock = socket.socket(fileno=os.dup(worker.conn.fileno()))
        worker.conn.close()
        self._running_loop.create_task(self._connect(worker, sock))

    async def _connect(self, worker: _Worker, sock: socket.socket) -> None:
        try:
            worker.channel = await ipc.open_channel(sock, functools.partial(self._message, worker),
                                                    functools.partial(self._lost, worker))
        except OSError:
            sock.close()
            self._lost(worker)
            return
        self._dispatch()

    def _message(self, worker: _Worker, frame: bytes) -> None:
        """One message of a worker: its first word (a replacement's), then its replies. Raising here
        closes the channel, and the worker is replaced (``_lost``)."""
        message = pickle.loads(frame)
        if not worker.ready:
            status, detail = message
            if status != "ready":
                raise WorkerLost(str(detail))
            worker.ready = True
        else:
            self._finish(worker, message)
        self._dispatch()

    def _finish(self, worker: _Worker, message: tuple[int, bool, object]) -> None:
        job, worker.job = worker.job, None
        if job is not None:
            self._running[job.user] -= 1
        if worker.deadline is not None:
            worker.deadline.cancel()
            worker.deadline = None
        job_id, ok, result = message
        if job is None or job.job_id != job_id or job.future.done():
            return  # abandoned by its caller (timed out, client gone): nobody waits for it
        if ok and isinstance(result, _Result):
            job.future.set_result(result)
        elif isinstance(result, GuardFormatError):
            job.future.set_exception(result)
        else:
            job.future.set_exception(InspectionError(f"the engine raised {result}"))

    def _next_job(self) -> _Job | None:
        """The first job of the next user in turn who is below their share of the workers."""
        for user in list(self._queues):
            if self._running[user] >= self.user_share:
                continue
            queue = self._queues.pop(user)
            job = queue.popleft()
            if queue:
                self._queues[user] = queue  # back of the line
            return job
        return None

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers, the users in turn."""
        for worker in self._pool:
            if not self._queues:
                break
            if worker.job is not None or not worker.ready or worker.channel is None or worker.gone:
                continue
            job = self._next_job()
            if job is None:
                break  # every waiting user already has their share
            if job.queued is not None:
                job.queued.cancel()
            self._running[job.user] += 1
            worker.job, job.started = job, True
            worker.channel.send(job.payload)
            worker.deadline = self._running_loop.call_later(job.timeout, self._overran, worker, job)
        if self._closing and not self._queues:
            for worker in self._pool:
                if worker.job is None:
                    self._stop(worker)

    def _unqueue(self, job: _Job) -> None:
        queue = self._queues.get(job.user)
        if queue is not None and job in queue:
            queue.remove(job)
            if not queue:
                del self._queues[job.user]
        if job.queued is not None:
            job.queued.cancel()

    def _abandon(self, job: _Job) -> None:
        """The caller stopped waiting: drop the job if it is still queued; a running one finishes or
        overruns on its own."""
        self._unqueue(job)
        if not job.future.done():
            job.future.cancel()

    def _waited_too_long(self, job: _Job) -> None:
        self._unqueue(job)
        if not job.future.done():
            job.future.set_exception(InspectionTimeout("no inspection worker was free in time"))

    def _overran(self, worker: _Worker, job: _Job) -> None:
        if worker.job is job:
            worker.overran = True
            self._kill(worker)  # its channel closes, and _lost replaces it

    def _lost(self, worker: _Worker) -> None:
        """A worker's socket closed: fail its job, and replace it unless the pool is closing."""
        if worker.deadline is not None:
            worker.deadline.cancel()
        job, worker.job = worker.job, None
        if job is not None:
            self._running[job.user] -= 1
        if job is not None and not job.future.done():
            job.future.set_exception(
                InspectionTimeout("the inspection ran past its time limit") if worker.overran
                else WorkerLost("the inspection worker stopped during the inspection"))
        if worker.gone:
            return
        worker.gone = True
        self._kill(worker)
        self._reap(worker)
        if worker in self._pool:
            self._pool.remove(worker)
        if not self._closing:
            if self._on_replace is not None:
                self._on_replace("overran" if worker.overran else "died")
            # One that died while starting is replaced after a pause, not in a tight loop.
            delay = 0.0 if worker.ready else RESPAWN_PAUSE_SECONDS
            self._running_loop.call_later(delay, self._replace)
        self._dispatch()

    def _replace(self) -> None:
        if self._closing:
            return
        replacement = self._spawn()
        self._pool.append(replacement)
        self._open_streams(replacement)

    # ------------------------------------------------------------ stopping

    def _kill(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        if worker.channel is not None and self._loop is not None and not self._loop.is_closed():
            worker.channel.close()

    def _stop(self, worker: _Worker) -> None:
        """Close an idle worker's socket: it exits at EOF."""
        if worker.gone:
            return
        worker.gone = True
        if worker.channel is None:
            worker.conn.close()
        elif self._loop is not None and not self._loop.is_closed():
            worker.channel.close()
        else:  # the loop that owned the socket is gone: the socket cannot be closed from here
            worker.process.terminate()
        self._reap(worker)

    @staticmethod
    def _reap(worker: _Worker) -> None:
        def join() -> None:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()

        threading.Thread(target=join, name="guard-worker-reaper", daemon=True).start()

    def close(self, finish_pending: bool = False) -> None:
        """Stop the workers; with ``finish_pending`` the inspections already queued still complete
        (a policy reload must not drop requests), otherwise they fail closed now (shutdown)."""
        self._closing = True
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=not finish_pending)
            return
        if not finish_pending:
            for queue in self._queues.values():
                for job in queue:
                    if job.queued is not None:
                        job.queued.cancel()
                    if not job.future.done():
                        job.future.set_exception(WorkerLost("the inspection pool was shut down"))
            self._queues.clear()
            for worker in list(self._pool):
                if worker.job is not None:
                    self._kill(worker)
                    self._reap(worker)
        if self._loop is None or self._loop.is_closed():
            for worker in self._pool:  # never used from a loop: nothing can be pending
                self._stop(worker)
            return
        self._loop.call_soon_threadsafe(self._dispatch)  # idle workers stop now, busy ones when done
