"""One generation worker per model for the web app: requests queue up, share batches, stream, and none waits forever.

A model is not safe to call from many threads at once, and on a CPU one batch of 8 texts costs little more than
one text. So web threads hand their request to a single worker thread and wait for (or stream) the answer; how the
worker batches the requests is in `aurore/web/batching.py`. A request not answered within `timeout` seconds gets
`ServiceBusy` (HTTP 503).
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

from aurore.engines.generation import Engine, Sampling
from aurore.web.batching import BATCH_WINDOW, BatchWorker, ContinuousWorker, Job, JobQueue

WARM_UP_LIMIT = 600.0  # seconds a request waits for the engine's warm-up at most (it always ends: web._warm_up)


class ServiceBusy(RuntimeError):
    """No answer within the time-out: the server is overloaded."""


class GenerationService:
    """A model's requests: handed to its worker thread, answered whole or streamed, or ServiceBusy in time."""

    def __init__(self, engine: Engine, timeout: float = 60.0, max_batch: int = 8, batch_window: float = BATCH_WINDOW,
                 ready: threading.Event | None = None):
        self.engine, self.timeout = engine, timeout
        # Set once the engine is warmed up (compiled): until then requests queue, the worker waits.
        self.ready = ready if ready is not None else threading.Event()
        self._ready_at: float | None = None
        if ready is None:
            self.ready.set()
        self._queue = JobQueue()
        if hasattr(engine, "open_slots"):
            self._worker = ContinuousWorker(engine, self._queue, batch_window)
        else:
            self._worker = BatchWorker(engine, self._queue, max_batch, batch_window)
        threading.Thread(target=self._after_warm_up, name="generation-worker", daemon=True).start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Requests wait, or are being written (only the compiled decoder's worker tells the second)."""
        return bool(len(self._queue) or getattr(self._worker, "writing", 0))

    @property
    def batches(self) -> int:
        """How many engine calls were made (tests and /healthz read it)."""
        return self._worker.batches

    def submit(self, prompt: str, sampling: Sampling, streaming: bool = False) -> Job:
        job = Job(prompt, sampling, streaming)
        self._queue.put(job)
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

    def _after_warm_up(self) -> None:
        self.ready.wait()
        self._ready_at = time.monotonic()
        self._worker.run()
