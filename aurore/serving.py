"""One generation worker for the web app: requests queue up, compatible ones share a batch, none waits forever.

A model is not safe to call from many threads at once, and on a CPU one batch of 8 prompts costs little more than
one prompt. So web threads hand their request to a single worker thread and wait for the answer; the worker takes
the oldest request plus every waiting request with the same sampling settings (up to `max_batch`) and runs them
in one generate call. A request that is not answered within `timeout` seconds gets `ServiceBusy` (HTTP 503).

When the previous batch held several requests, the worker waits up to `batch_window` seconds for more before
starting a batch that is not full: clients answered by that batch send their next request a few milliseconds later,
and without the window they would miss the batch and wait a whole generate call (batches of 1 and 7 leapfrogging
instead of batches of 8). A lone client never waits.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from aurore.generation import Sampling


BATCH_WINDOW = 0.02  # seconds; a few loopback round trips, small next to one generate call (~0.5 s on 124M)


def _shares_a_batch(a: Sampling, b: Sampling) -> bool:
    """Requests with the same settings share one generate call, whatever their seeds (the page draws one per click):
    the batch samples with its first request's seed, so a seed repeats a text only for a request served alone."""
    return dataclasses.replace(a, seed=0) == dataclasses.replace(b, seed=0)


class ServiceBusy(RuntimeError):
    """No answer within the time-out: the server is overloaded."""


@dataclass
class _Job:
    prompt: str
    sampling: Sampling
    future: Future = field(default_factory=Future)


class GenerationService:
    def __init__(self, engine, timeout: float = 60.0, max_batch: int = 8, batch_window: float = BATCH_WINDOW):
        self.engine, self.timeout, self.max_batch, self.batch_window = engine, timeout, max_batch, batch_window
        self._pending: deque[_Job] = deque()
        self._ready = threading.Condition()
        self.batches = 0  # how many generate calls were made (tests and /healthz read it)
        self._last_batch_size = 0
        threading.Thread(target=self._work, name="generation-worker", daemon=True).start()

    @property
    def queued(self) -> int:
        return len(self._pending)

    def generate(self, prompt: str, sampling: Sampling) -> list[str]:
        """Called from a web thread: wait for the texts, or raise ServiceBusy after `timeout` seconds."""
        job = _Job(prompt, sampling)
        with self._ready:
            self._pending.append(job)
            self._ready.notify()
        try:
            return job.future.result(timeout=self.timeout)
        except FutureTimeout:
            job.future.cancel()  # if still queued, the worker will skip it
            raise ServiceBusy(f"no answer within {self.timeout:.0f} s") from None

    def _next_batch(self) -> list[_Job]:
        with self._ready:
            while not self._pending:
                self._ready.wait()
            deadline = time.monotonic() + (self.batch_window if self._last_batch_size > 1 else 0.0)
            while len(self._pending) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._ready.wait(left)  # woken by each new request
            first = self._pending.popleft()
            batch, others = [first], deque()
            while self._pending and len(batch) < self.max_batch:
                job = self._pending.popleft()
                (batch if _shares_a_batch(job.sampling, first.sampling) else others).append(job)
            self._pending.extendleft(reversed(others))  # the rest keep their place in the queue
            self._last_batch_size = len(batch)
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            try:
                results = self.engine.generate_batch([job.prompt for job in batch], batch[0].sampling)
                self.batches += 1
            except Exception as error:  # the web thread turns it into an error page
                for job in batch:
                    job.future.set_exception(error)
                continue
            for job, texts in zip(batch, results):
                job.future.set_result(texts)
