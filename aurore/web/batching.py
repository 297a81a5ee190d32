"""The generation worker's side: the queue of requests, and how the one worker per model batches them.

Each request becomes rows (one per text wanted), each row with its own settings. While the engine writes, it reports
the texts so far: each request sees its own (streaming), and a streamed request nobody reads any more (a closed page)
is cancelled: its rows stop at the next chunk.

With an engine that can add rows to a running batch (`open_slots`: the compiled decoder), `ContinuousWorker` runs
continuously: every STREAM_CHUNK tokens at most, complete texts leave and waiting requests take their rows, so a
16-token request never waits for a 64-token one (continuous batching). After texts were completed, the worker
waits up to `batch_window` for their clients' next requests, as below.

Otherwise (the eager pipeline, the mini-GPT), `BatchWorker` takes the oldest requests whose rows fit in one batch
(up to `max_batch` rows), whatever their temperature, top-k, top-p, seed or length, and runs them in one engine call;
the whole batch stops when no row is wanted. When the previous batch held several requests, it waits up to
`batch_window` seconds for more before starting a batch that is not full: clients answered by that batch send their
next request a few milliseconds later, and without the window they would miss the batch and wait a whole generate
call (batches of 1 and 7 leapfrogging instead of batches of 8). A lone client never waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Iterable

from aurore.engines.generation import STREAM_CHUNK, ContinuousEngine, Engine, Row, RowSlots, Sampling, rows_for

BATCH_WINDOW = 0.02  # seconds; a few loopback round trips, small next to one generate call (~0.5 s on 124M)


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


class JobQueue:
    """Requests waiting for the worker, oldest first: web threads put them, the one worker takes them."""

    def __init__(self):
        self._jobs: deque[Job] = deque()
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._jobs)

    def put(self, job: Job) -> None:
        with self._changed:
            self._jobs.append(job)
            self._changed.notify()

    def rows(self) -> int:
        return sum(len(job.rows) for job in self._jobs)

    def wait_until(self, ready: Callable[[], object], timeout: float | None = None) -> None:
        """Wait until `ready()` is true, checked again at each new request; at most `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(ready, timeout)

    def take(self, room: int, at_least_one: bool = False) -> list[Job]:
        """The oldest requests whose rows fit in `room` rows, whatever their settings (with `at_least_one`, the
        oldest one whatever its size); cancelled ones are dropped on the way."""
        taken, rows = [], 0
        with self._changed:
            while self._jobs and ((at_least_one and not taken) or rows + len(self._jobs[0].rows) <= room):
                job = self._jobs.popleft()
                if not job.cancelled:
                    taken.append(job)
                    rows += len(job.rows)
        return taken


def fail(jobs: Iterable[Job], error: BaseException) -> None:
    """End each job with `error` (the web thread turns it into an error page)."""
    for job in jobs:
        job.update(job.texts, done=True, error=error)


class BatchWorker:
    """Runs the oldest waiting requests together, one engine call per batch (any engine)."""

    def __init__(self, engine: Engine, queue: JobQueue, max_batch: int, batch_window: float):
        self.engine, self.queue, self.max_batch, self.batch_window = engine, queue, max_batch, batch_window
        self.batches = 0  # how many engine calls were made (tests and /healthz read it)
        self._last_batch_size = 0

    def _next_batch(self) -> list[Job]:
        self.queue.wait_until(lambda: len(self.queue))
        window = self.batch_window if self._last_batch_size > 1 else 0.0
        self.queue.wait_until(lambda: self.queue.rows() >= self.max_batch, window)  # woken by each new request
        batch = self.queue.take(self.max_batch, at_least_one=True)
        self._last_batch_size = len(batch)
        return batch

    def run(self) -> None:
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
            except Exception as error:
                fail(batch, error)
                continue
            for job, span in zip(batch, spans):
                job.update(texts[span], done=True)


class ContinuousWorker:
    """Keeps one set of rows busy: requests join and leave between a few decoding steps (continuous batching)."""

    def __init__(self, engine: ContinuousEngine, queue: JobQueue, batch_window: float):
        self.engine, self.queue, self.batch_window = engine, queue, batch_window
        self.batches = 0  # how many engine calls were made (tests and /healthz read it)
        self.writing = 0  # requests whose texts are being written now

    def _admit(self, slots: RowSlots, running: dict[Job, list[int]], completed: bool) -> None:
        """Wait for work when there is none; then give the oldest waiting requests the free slots. Just after texts
        were completed, wait up to `batch_window` for their clients' next requests (sent a few milliseconds later,
        they would otherwise wait for the whole next call)."""
        self.queue.wait_until(lambda: len(self.queue) or running)
        if completed and running and slots.free and not len(self.queue):
            self.queue.wait_until(lambda: len(self.queue), self.batch_window)
        self.writing = len(running) + len(self.queue)  # busy from here on: the requests taken are read first
        admitted = self.queue.take(slots.free)
        self.writing = len(running) + len(admitted)
        try:  # the prompts of the requests that join now are read in one pass
            running.update(zip(admitted, slots.admit_requests([job.rows for job in admitted])))
        except Exception:  # e.g. one too long for the model: admitted one by one, only that one fails
            for job in admitted:
                try:
                    running[job] = slots.admit_requests([job.rows])[0]
                except Exception as error:
                    fail([job], error)

    def run(self) -> None:
        slots, running, completed = self.engine.open_slots(), {}, False
        while True:
            self._admit(slots, running, completed)
            self.writing, completed = len(running), False
            # A streamed request sees its first token at once; then every STREAM_CHUNK tokens, or sooner: when a
            # text is complete (its client gets it at once, and its next request a free row), or when one writes
            # end-of-text while a request waits for a row.
            fresh = any(job.streaming and not slots.started(ids[0]) for job, ids in running.items())
            steps = 1 if fresh else min(STREAM_CHUNK, slots.next_end or STREAM_CHUNK)
            try:
                slots.advance(steps, refill=bool(len(self.queue)))
                self.batches += 1
            except Exception as error:  # the next requests start afresh
                self.writing = 0  # before the failed requests hear of it: nothing is being written any more
                fail(running, error)
                slots, running = self.engine.open_slots(), {}
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
            self.writing = len(running)
