"""Preparing the compiled decoder's programs before requests need them.

The web app opens its page as soon as the models are loaded and compiles in the background (first the three
programs a lone request needs: `aurore/web/__init__.py`); XLA keeps the programs on disk for the next start
(`fastgen.keep_compilations`). Each program is prepared by running it once on a dummy request of its shape.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

from aurore.engines.generation import Sampling
from aurore.engines.slots import Slots
from aurore.engines.xla_programs import BATCH_BUCKETS, PREFILL_ROWS

if TYPE_CHECKING:  # the generator owns its warm-up: imported for the type only
    from aurore.engines.fastgen import CompiledGenerator


class WarmUp:
    """The programs one generator has prepared, and how to prepare more."""

    def __init__(self, generator: CompiledGenerator):
        self.generator = generator
        self.prepared: set[tuple] = set()

    def run(self, lengths: tuple[int, ...] = (128,), batches: tuple[int, ...] = BATCH_BUCKETS,
            prompts: tuple[int, ...] | None = None, workers: int = 1,
            before_each: Callable[[], None] | None = None) -> int:
        """Compile (or read from the persistent cache) programs before requests need them: for each row count and
        cache length, the decoding step, and per prompt bucket (default: all that fit) the prefills of 1, 4 and 8
        prompts at once and their placing into the rows. With `workers` > 1, programs are prepared side by side
        (XLA lowers and compiles outside Python's lock: two cores, two programs). `before_each` is called before
        each program (the server waits there while requests are being written).
        Programs an earlier call prepared are skipped. Returns how many programs this call prepared."""
        g, before = self.generator, len(self.prepared)
        programs = {}  # what each job prepares -> the job
        for length in sorted({min(length, g.context_size) for length in lengths}):
            for batch in batches:
                programs[("decode", batch, length)] = functools.partial(self._decode, batch, length)
                for prompt in prompts or g.prompt_buckets(length):
                    for count in (n for n in PREFILL_ROWS if n <= batch):
                        programs[("place", batch, length, count, prompt)] = functools.partial(
                            self._prefill, batch, length, count, prompt)
        jobs = [job for key, job in programs.items() if key not in self.prepared]

        def prepare(job: Callable[[], None]) -> None:
            if before_each is not None:
                before_each()
            job()

        # Traced first, in a fixed order (XLA's cache knows a program by its traced name), then lowered and compiled
        # side by side: two lowerings on two cores overlap well (1.8 s instead of 2.5 for the three programs of a
        # lone request, 124M shape); a tracing beside them does not (it holds Python's lock).
        g.programs.trace("prefill", "place", "decode")
        if workers == 1:  # on this thread, which Ctrl-C abandons with the server
            for job in jobs:
                prepare(job)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="warm-up") as pool:
                futures = [pool.submit(prepare, job) for job in jobs]
                try:
                    for future in futures:
                        future.result()  # an error in one is raised here...
                except BaseException:
                    pool.shutdown(cancel_futures=True)  # ...and the programs not started yet are left
                    raise
        return len(self.prepared) - before

    def _prefill(self, batch: int, length: int, count: int, prompt: int) -> None:
        """`count` prompts whose prefill reads `prompt` tokens, placed into `batch` rows of `length` positions."""
        if ("place", batch, length, count, prompt) in self.prepared:
            return
        ids = [self.generator.eos] * (min(prompt, length - 2) + 1)
        Slots(self.generator).admit_many([(ids, [Sampling(max_new_tokens=1)] * (batch // count))] * count,
                                         min_length=length)
        self.prepared |= {("prefill", count, prompt), ("place", batch, length, count, prompt)}

    def _decode(self, batch: int, length: int) -> None:
        """One decoding step of `batch` one-token prompts (nothing to prefill) in caches of `length` positions."""
        if ("decode", batch, length) in self.prepared:
            return
        slots = Slots(self.generator)
        slots.admit([self.generator.eos], [Sampling(max_new_tokens=1)] * batch, min_length=length)
        slots.advance(1)
        self.prepared.add(("decode", batch, length))
