"""One generation worker per model for the web app: requests queue up, share batches, stream, and none waits forever.

A model is not safe to call from many threads at once, and on a CPU one batch of 8 texts costs little more than
one text. So web threads hand their request to a single worker thread and wait for (or stream) the answer. Each
request becomes rows (one per text wanted), each row with its own settings: the worker takes the oldest requests
whose rows fit in one batch (up to `max_batch` rows), whatever their temperature, top-k, top-p, seed or length,
and runs them in one engine call. While the engine writes, it reports the texts so far: each request sees its own
(streaming), and a streamed request nobody reads any more (a closed page) is cancelled: its rows stop at the next
chunk, and the whole batch stops when no row is wanted. A request not answered within `timeout` seconds gets
`ServiceBusy` (HTTP 503).

With an engine that can add rows to a running batch (`open_slots`: the compiled decoder), the worker runs
continuously: every STREAM_CHUNK tokens at most, complete texts leave and waiting requests take their rows, so a
16-token request never waits for a 64-token one (continuous batching). After texts were completed, the worker
waits up to `batch_window` for their clients' next requests, as below.

Otherwise (the eager pipeline, the mini-GPT): when the previous batch held several requests, the worker waits up to
`batch_window` seconds for more before starting a batch that is not full: clients answered by that batch send their
next request a few milliseconds later, and without the window they would miss the batch and wait a whole generate
call (batches of 1 and 7 leapfrogging instead of batches of 8). A lone client never waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Iterator

from aurore.engines.generation import STREAM_CHUNK, ContinuousEngine, Engine, Row, RowSlots, Sampling, rows_for

WARM_UP_LIMIT = 600.0  # seconds a request waits for the engine's warm-up at most (it always ends: web._warm_up)
BATCH_WINDOW = 0.02  # seconds; a few loopback round trips, small next to one generate call (~0.5 s on 124M)


class ServiceBusy(RuntimeError):
    """No answer within the time-out: the server is overloaded."""


class Job:
    """A request: its rows, their texts so far, and whether it is done, failed, or no longer wanted."""

    def __init__(self, prompt: str, sampling: Sampling, streaming: bool = False):
        self.rows: list[Row] = rows_for(prompt, sampling)
        self.streaming = streaming  # someone reads the texts as they grow: the engine reports every few tokens
        self.texts = [row.prompt for row in self.rows]
        self.version = 0  # bumped at each update, so a streaming reader knows there is something new
        self.done, self.cancelled, self.error = False, False, None
        self.submitted = time.monotonic()
        self._changed = threading.Condition()

    def update(self, texts: list[str], done: bool = False, error: BaseException | None = None) -> None:
        with self._changed:
            self.texts, self.done, self.error = list(texts), done, error
            self.version += 1
            self._changed.notify_all()

    def cancel(self) -> None:
        self.cancelled = True

    def wait(self, version: int, timeout: float) -> bool:
        """Wait until the job changed since `version` (or is done); False after `timeout` seconds without news."""
        with self._changed:
            return self._changed.wait_for(lambda: self.version > version or self.done, timeout)


class GenerationService:
    def __init__(self, engine: Engine, timeout: float = 60.0, max_batch: int = 8, batch_window: float = BATCH_WINDOW,
                 ready: threading.Event | None = None):
        self.engine, self.timeout, self.max_batch, self.batch_window = engine, timeout, max_batch, batch_window
        # Set once the engine is warmed up (compiled): until then requests queue, the worker waits.
        self.ready = ready if ready is not None else threading.Event()
        self._ready_at: float | None = None
        if ready is None:
            self.ready.set()
        self._pending: deque[Job] = deque()
        self._ready = threading.Condition()
        self.batches = 0  # how many engine calls were made (tests and /healthz read it)
        self._last_batch_size = 0
        work = self._work_continuously if hasattr(engine, "open_slots") else self._work
        threading.Thread(target=self._after_warm_up, args=(work,), name="generation-worker", daemon=True).start()

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, prompt: str, sampling: Sampling, streaming: bool = False) -> Job:
        job = Job(prompt, sampling, streaming)
        with self._ready:
            self._pending.append(job)
            self._ready.notify()
        return job

    def generate(self, prompt: str, sampling: Sampling) -> list[str]:
        """Called from a web thread: wait for the texts, or raise ServiceBusy after `timeout` seconds."""
        return self.result(self.submit(prompt, sampling))

    def _deadline(self, job: Job) -> float:
        """`timeout` seconds after the job was submitted, or after the engine was ready if that came later (a request
        sent while the server compiles waits for it: the page opens before the model is compiled)."""
        self.ready.wait(WARM_UP_LIMIT)
        return max(job.submitted, self._ready_at or time.monotonic()) + self.timeout

    def result(self, job: Job) -> list[str]:
        """Wait for a submitted job's texts, or raise ServiceBusy `timeout` seconds after it was submitted."""
        deadline = self._deadline(job)
        while not job.done:
            if not job.wait(job.version, deadline - time.monotonic()) and not job.done:
                job.cancel()  # if still queued, the worker skips it; if running, its rows stop
                raise ServiceBusy(f"no answer within {self.timeout:.0f} s")
        if job.error is not None:
            raise job.error
        return job.texts

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[list[str]]:
        """The texts so far, each time they grow, until they are complete. Closing the iterator (the client went
        away) cancels the request. ServiceBusy when `timeout` seconds pass without news."""
        job = self.submit(prompt, sampling, streaming=True)
        seen = 0
        try:
            self.ready.wait(WARM_UP_LIMIT)  # no news is expected before the engine is ready
            while True:
                if not job.wait(seen, self.timeout):
                    raise ServiceBusy(f"no news within {self.timeout:.0f} s")
                seen = job.version
                if job.error is not None:
                    raise job.error
                yield job.texts
                if job.done:
                    return
        finally:
            if not job.done:
                job.cancel()

    def _after_warm_up(self, work) -> None:
        self.ready.wait()
        self._ready_at = time.monotonic()
        work()

    def _next_batch(self) -> list[Job]:
        with self._ready:
            while not self._pending:
                self._ready.wait()
            deadline = time.monotonic() + (self.batch_window if self._last_batch_size > 1 else 0.0)
            while self._rows_pending() < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._ready.wait(left)  # woken by each new request
            batch, rows = [], 0
            while self._pending and (not batch or rows + len(self._pending[0].rows) <= self.max_batch):
                job = self._pending.popleft()  # oldest first, whatever its settings
                if not job.cancelled:
                    batch.append(job)
                    rows += len(job.rows)
            self._last_batch_size = len(batch)
        return batch

    def _rows_pending(self) -> int:
        return sum(len(job.rows) for job in self._pending)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            spans, rows = [], []
            for job in batch:
                spans.append(slice(len(rows), len(rows) + len(job.rows)))
                rows += job.rows

            def progress(texts: list[str]) -> list[bool]:
                for job, span in zip(batch, spans):
                    job.update(texts[span])
                return [not job.cancelled for job, span in zip(batch, spans) for _ in range(span.stop - span.start)]

            try:
                # Without a streaming reader, one engine call does the whole texts (no chunks to pay for).
                texts = self.engine.generate_rows(rows, progress if any(job.streaming for job in batch) else None)
                self.batches += 1
            except Exception as error:  # the web thread turns it into an error page
                for job in batch:
                    job.update(job.texts, done=True, error=error)
                continue
            for job, span in zip(batch, spans):
                job.update(texts[span], done=True)

    # -- continuous batching --------------------------------------------------------------------------------------

    def _admit(self, slots: RowSlots, running: dict[Job, list[int]], completed: bool) -> None:
        """Wait for work when there is none; then give the oldest waiting requests the free slots. Just after texts
        were completed, wait up to `batch_window` for their clients' next requests (sent a few milliseconds later,
        they would otherwise wait for the whole next call)."""
        with self._ready:
            while not self._pending and not running:
                self._ready.wait()
            if completed and running and slots.free and not self._pending:
                self._ready.wait(self.batch_window)
            admitted = []
            while self._pending and len(self._pending[0].rows) <= slots.free - sum(len(j.rows) for j in admitted):
                job = self._pending.popleft()  # oldest first, whatever its settings
                if not job.cancelled:
                    admitted.append(job)
        try:  # the prompts of the requests that join now are read in one pass
            running.update(zip(admitted, slots.admit_requests([job.rows for job in admitted])))
        except Exception:  # e.g. one too long for the model: admitted one by one, only that one fails
            for job in admitted:
                try:
                    running[job] = slots.admit_requests([job.rows])[0]
                except Exception as error:
                    job.update(job.texts, done=True, error=error)

    def _work_continuously(self) -> None:
        engine: ContinuousEngine = self.engine  # type: ignore[assignment]
        slots, running, completed = engine.open_slots(), {}, False
        while True:
            self._admit(slots, running, completed)
            completed = False
            # A streamed request sees its first token at once; then every STREAM_CHUNK tokens, or sooner: when a
            # text is complete (its client gets it at once, and its next request a free row), or when one writes
            # end-of-text while a request waits for a row.
            fresh = any(job.streaming and not slots.started(ids[0]) for job, ids in running.items())
            steps = 1 if fresh else min(STREAM_CHUNK, slots.next_end or STREAM_CHUNK)
            try:
                slots.advance(steps, refill=bool(self._pending))
                self.batches += 1
            except Exception as error:  # the web threads turn it into an error page; the next requests start afresh
                for job in running:
                    job.update(job.texts, done=True, error=error)
                slots, running = engine.open_slots(), {}
                continue
            for job, ids in list(running.items()):
                done = all(slots.finished(slot) for slot in ids)
                if done or job.streaming:
                    job.update([slots.text(slot) for slot in ids], done=done)
                if done or job.cancelled:  # a closed page frees its rows for the next request
                    for slot in ids:
                        slots.release(slot)
                    del running[job]
                    completed = completed or done
