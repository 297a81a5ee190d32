"""Continuous batching for the compiled decoder: rows come and go between compiled calls.

A request takes a free row as soon as another text ends, instead of waiting for the longest text of a batch. A new
row first reads its prompt in one pass (the prefill: one pass over 20 tokens reads the weights once, token by token
would read them 20 times), then decodes with the others. The server calls the decoder a few steps at a time
(`generation.STREAM_CHUNK` at most), to stream the texts, hand over complete ones, let waiting requests in and drop
rows whose page was closed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import numpy as np

from aurore.engines.generation import Row, Sampling
from aurore.engines.xla_programs import BATCH_BUCKETS, CHUNK, bucket

if TYPE_CHECKING:  # the generator opens the slots: imported for the type only
    from aurore.engines.fastgen import CompiledGenerator


@dataclasses.dataclass
class _Row:
    prompt_ids: list[int]
    sampling: Sampling
    new_ids: list[int] = dataclasses.field(default_factory=list)
    done: bool = False


class Slots:
    """Rows decoding together, each at its own position: a row joins as soon as a slot is free (continuous
    batching), so a short text never waits for a long one, and requests with any settings share the steps.

    The state lives here between compiled calls: per row its position, last token, tokens still to write and
    settings, and the KV caches ([B * H, T, D] per layer). The row count B (1 or 8) and the length T grow when a
    row needs them (the caches are padded) and shrink back when every row is done.
    """

    def __init__(self, generator: CompiledGenerator):
        self.generator = generator
        self._reset(1, bucket(1, generator.length_buckets))

    def _reset(self, batch: int, length: int) -> None:
        self.rows: list[_Row | None] = [None] * batch
        self.length = length
        self.positions = np.zeros(batch, np.int32)
        self.last = np.full(batch, self.generator.eos, np.int32)
        self.remaining = np.zeros(batch, np.int32)
        self.settings = [Sampling(max_new_tokens=0)] * batch
        self.caches = self.generator.programs.net.empty_caches(batch, length)

    @property
    def free(self) -> int:
        return BATCH_BUCKETS[-1] - sum(row is not None for row in self.rows)

    @property
    def busy(self) -> bool:
        return bool(self.remaining.any())

    @property
    def next_end(self) -> int:
        """Steps until the first busy row has all its tokens (it may end sooner, on end-of-text); 0 when none is busy."""
        busy = self.remaining[self.remaining > 0]
        return int(busy.min()) if busy.size else 0

    def _grow(self, batch: int, length: int) -> None:
        if all(row is None for row in self.rows):  # nothing to keep: start afresh at the smallest shape that fits
            return self._reset(batch, length)
        batch, length = max(batch, len(self.rows)), max(length, self.length)
        more, longer = batch - len(self.rows), length - self.length
        if not more and not longer:
            return
        self.caches = self.generator.programs.net.pad_caches(self.caches, more, longer)
        self.rows += [None] * more
        self.positions = np.concatenate([self.positions, np.zeros(more, np.int32)])
        self.last = np.concatenate([self.last, np.full(more, self.generator.eos, np.int32)])
        self.remaining = np.concatenate([self.remaining, np.zeros(more, np.int32)])
        self.settings += [Sampling(max_new_tokens=0)] * more
        self.length = length

    def admit(self, prompt_ids: list[int], samplings: list[Sampling], min_length: int = 0) -> list[int]:
        """Give one prompt's rows (one per sampling) free slots; returns their slots."""
        return self.admit_many([(prompt_ids, samplings)], min_length)[0]

    def admit_many(self, prompts: list[tuple[list[int], list[Sampling]]], min_length: int = 0) -> list[list[int]]:
        """Give each prompt's rows (one per sampling) free slots and read the prompts in one prefill; returns each
        prompt's slots."""
        if not prompts:
            return []
        g = self.generator
        wanted = [len(ids) + max(s.max_new_tokens for s in samplings) for ids, samplings in prompts]
        for needed in wanted:
            g.check_length(needed)
        rows = sum(len(samplings) for _, samplings in prompts)
        if rows > self.free:
            raise ValueError(f"{rows} rows, {self.free} free slots")
        used = len(self.rows) - sum(row is None for row in self.rows)
        self._grow(bucket(used + rows, BATCH_BUCKETS), bucket(max(*wanted, min_length), g.length_buckets))
        admitted, sources, reads = _assign(prompts, [i for i, row in enumerate(self.rows) if row is None],
                                           len(self.rows))
        for (ids, samplings), slots in zip(prompts, admitted):
            for slot, sampling in zip(slots, samplings):
                self.rows[slot] = _Row(list(ids), sampling, done=sampling.max_new_tokens == 0)
                self.positions[slot] = len(ids) - 1  # the prompt's last token is fed by the first decoding step
                self.last[slot] = ids[-1]
                self.remaining[slot] = sampling.max_new_tokens
                self.settings[slot] = sampling
        if reads:
            self.caches = g.programs.read_prompts(self.caches, reads, sources, g.prompt_buckets(self.length))
        return admitted

    def advance(self, steps: int, refill: bool = False) -> None:
        """Decode up to `steps` tokens per busy row (with `refill`, stop early when a row finishes)."""
        if not self.busy:
            return
        self.positions, self.last, self.remaining, self.caches, tokens = self.generator.programs.steps(
            self.positions, self.last, self.remaining, self.caches, self.settings, steps, refill)
        for row, written, left in zip(self.rows, tokens, self.remaining):
            if row is not None:
                if not row.done:
                    row.new_ids += [t for t in written.tolist() if t >= 0 and t != self.generator.eos]
                row.done = bool(left == 0)

    def admit_requests(self, requests: list[list[Row]]) -> list[list[int]]:
        """`admit_many` for requests given as text (each: one prompt, a row per text); returns each one's slots."""
        assert all(len({row.prompt for row in rows}) == 1 for rows in requests), "a request's rows share a prompt"
        tokenize = self.generator.tokenizer
        return self.admit_many([(tokenize(rows[0].prompt)["input_ids"], [row.sampling for row in rows])
                                for rows in requests])

    def new_ids(self, slot: int) -> list[int]:
        return self.rows[slot].new_ids

    def text(self, slot: int) -> str:
        row = self.rows[slot]
        return self.generator.tokenizer.decode(row.prompt_ids + row.new_ids, skip_special_tokens=True)

    def started(self, slot: int) -> bool:
        return bool(self.rows[slot].new_ids) or self.rows[slot].done

    def finished(self, slot: int) -> bool:
        return self.rows[slot].done

    def release(self, slot: int) -> None:
        """Free a slot (its row is done, or nobody wants it any more: it stops at once)."""
        self.rows[slot] = None
        self.remaining[slot] = 0
        if all(row is None for row in self.rows):
            self._reset(1, bucket(1, self.generator.length_buckets))


def _assign(prompts: list[tuple[list[int], list[Sampling]]], free: list[int],
            batch: int) -> tuple[list[list[int]], np.ndarray, list[list[int]]]:
    """Free slots for each prompt's rows, in order; which prompt each of the `batch` rows reads (-1: none, a row
    keeps its cache), and the prompts to read (each but its last token: the first decoding step feeds that one)."""
    admitted, sources, reads = [], np.full(batch, -1, np.int32), []
    for ids, samplings in prompts:
        slots, free = free[: len(samplings)], free[len(samplings) :]
        if len(ids) > 1:  # the texts of one request share their prompt's keys and values
            sources[slots] = len(reads)
            reads.append(ids[:-1])
        admitted.append(slots)
    return admitted, sources, reads


def decode_all(slots: Slots, prompts: list[list[int]], samplings: list[Sampling], steps: int = CHUNK,
               wanted: Callable[[list[list[int]]], list[bool]] | None = None) -> list[list[int]]:
    """The decoding loop: new token ids for each prompt (each ends before end-of-text), rows joining `slots` as
    others finish.

    With `wanted`, it is called every `steps` tokens with the ids so far, and rows it answers False for stop.
    """
    results, waiting, running = [[] for _ in prompts], list(range(len(prompts))), {}
    while waiting or running:
        groups, free = [], slots.free  # rows in a row with the same prompt share its keys and values
        while waiting and free:
            group = 1
            while group < min(len(waiting), free) and prompts[waiting[group]] == prompts[waiting[0]]:
                group += 1
            groups.append(waiting[:group])
            waiting, free = waiting[group:], free - group
        if groups:  # one prefill for all the prompts that join now
            admitted = slots.admit_many([(prompts[g[0]], [samplings[i] for i in g]) for g in groups])
            for slots_of, indices in zip(admitted, groups):
                running.update(zip(slots_of, indices))
        fresh = wanted is not None and any(not slots.new_ids(slot) for slot in running)
        slots.advance(1 if fresh else steps, refill=bool(waiting))  # a streamed text shows its first token at once
        for slot, index in list(running.items()):
            results[index] = list(slots.new_ids(slot))
            if slots.finished(slot):
                slots.release(slot)
                del running[slot]
        if wanted is not None and running:
            keep = wanted([list(ids) for ids in results])
            for slot, index in list(running.items()):
                if not keep[index]:
                    slots.release(slot)
                    del running[slot]
    return results
