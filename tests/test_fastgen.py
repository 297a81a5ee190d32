"""The compiled decoder: same sampling rules as transformers, same greedy tokens as eager, no recompilation."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from transformers.generation.tf_logits_process import (
    TFTemperatureLogitsWarper,
    TFTopKLogitsWarper,
    TFTopPLogitsWarper,
)

from aurore.config import Config
from aurore.engines import fastgen, generation, warpers, xla_programs
from conftest import REPO


CASES = [(1.0, 0, 1.0), (0.7, 10, 1.0), (1.3, 0, 0.9), (0.9, 50, 0.95), (2.0, 3, 0.5), (0.5, 1, 0.99),
         (1.0, 2000, 0.95), (1.0, 1024, 1.0), (1.0, 0, 0.1), (0.8, 100, 0.6)]


@pytest.mark.parametrize("temperature,top_k,top_p", CASES)
@pytest.mark.parametrize("vocab,spread", [(300, 3.0), (3000, 0.3), (3000, 8.0)])  # small; large flat; large peaked
def test_warping_matches_transformers_tf_logits_warpers(temperature, top_k, top_p, vocab, spread):
    """Both paths: among the 1,024 likeliest candidates, and the full sort when the kept set may go beyond."""
    logits = tf.constant(np.random.default_rng(top_k).normal(size=(4, vocab)) * spread, tf.float32)
    expected = logits
    if temperature != 1.0:
        expected = TFTemperatureLogitsWarper(temperature)(None, expected, 0)
    if top_k:
        expected = TFTopKLogitsWarper(min(top_k, vocab))(None, expected, 0)
    if top_p < 1.0:
        expected = TFTopPLogitsWarper(top_p)(None, expected, 0)
    got = warpers.warp_logits(logits, tf.constant(temperature), tf.constant(top_k), tf.constant(top_p))
    np.testing.assert_array_equal(np.isfinite(got.numpy()), np.isfinite(expected.numpy()))
    finite = np.isfinite(expected.numpy())
    np.testing.assert_allclose(got.numpy()[finite], expected.numpy()[finite], rtol=1e-6)


@pytest.mark.parametrize("temperature,top_k,top_p", CASES)
@pytest.mark.parametrize("spread", [0.3, 8.0])  # flat (kept set may go past the candidates), peaked
def test_sampling_draws_from_the_warped_distribution(temperature, top_k, top_p, spread):
    """sample_tokens draws among the candidates when it can: same support and frequencies as the warped softmax."""
    draws = 4000
    row = np.random.default_rng(top_k + 1).normal(size=(1, 3000)) * spread
    logits = tf.constant(np.repeat(row, draws, axis=0), tf.float32)  # one distribution, 4,000 independent draws
    args = tf.constant(temperature), tf.constant(top_k), tf.constant(top_p)
    expected = tf.nn.softmax(warpers.warp_logits(logits[:1], *args)).numpy()[0]
    tokens = warpers.sample_tokens(logits, *args, seeds=tf.range(draws), step=tf.constant(5)).numpy()
    assert expected[tokens].min() > 0, "a filtered token was drawn"
    # Five groups of tokens of about equal expected mass; each group's observed share is within ~5 sigma.
    ranked = np.argsort(-expected)
    group = np.minimum((np.cumsum(expected[ranked]) - expected[ranked] / 2) * 5, 4).astype(int)
    group_of = np.empty(len(expected), int)
    group_of[ranked] = group
    observed = np.bincount(group_of[tokens], minlength=5) / draws
    wanted = np.bincount(group, weights=expected[ranked], minlength=5)
    np.testing.assert_allclose(observed, wanted, atol=0.035)


def test_the_inverse_cdf_draw_follows_the_probabilities_and_never_picks_an_impossible_token():
    """The whole-vocabulary draw: uniforms spread evenly over [0, 1) land on each token in proportion to its
    probability, blocks of zero probability and padding included, even at the ends of the interval."""
    probs = np.zeros((1, 1000), np.float32)  # 4 blocks, the last one padded
    probs[0, [3, 700, 701, 999]] = [0.5, 0.25, 0.125, 0.125]
    uniforms = np.concatenate([(np.arange(4000) + 0.5) / 4000, [0.0, np.nextafter(1.0, 0.0)]]).astype(np.float32)
    draw = warpers._inverse_cdf(tf.constant(np.repeat(probs, len(uniforms), axis=0)))
    tokens = draw(tf.constant(uniforms)).numpy()
    assert set(tokens.tolist()) == {3, 700, 701, 999}
    np.testing.assert_allclose(np.bincount(tokens[:4000], minlength=1000)[[3, 700, 701, 999]] / 4000,
                               [0.5, 0.25, 0.125, 0.125])


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    folder = tiny_model_dir
    generator = generation.load_generator(str(folder), Config(workdir=folder.parent))
    return generator, fastgen.CompiledGenerator(generator.model, generator.tokenizer)


PROMPTS = ["La rivière", "Germain laboura le champ avec", "Lélia", "Le chanvreur contait des histoires à la veillée"]


def test_greedy_compiled_equals_eager_token_for_token(engines):
    generator, compiled = engines
    greedy = generation.Sampling(max_new_tokens=15, do_sample=False)
    for prompt in PROMPTS:
        eager = generator(prompt, do_sample=False, max_new_tokens=15, return_tensors=True,
                          pad_token_id=generator.tokenizer.eos_token_id)[0]["generated_token_ids"]
        eager_new = list(eager)[len(generator.tokenizer(prompt)["input_ids"]):]
        eos = generator.tokenizer.eos_token_id
        eager_new = eager_new[: eager_new.index(eos)] if eos in eager_new else eager_new
        ids = generator.tokenizer(prompt)["input_ids"]
        assert compiled.generate_ids([ids], greedy)[0] == eager_new, prompt
    # batched rows of different lengths give each row its own greedy continuation
    batch = compiled.generate_ids([generator.tokenizer(p)["input_ids"] for p in PROMPTS], greedy)
    assert batch == [compiled.generate_ids([generator.tokenizer(p)["input_ids"]], greedy)[0] for p in PROMPTS]


VARIED_REQUESTS = """
import json
import sys
from pathlib import Path
from aurore.config import Config
from aurore.engines import fastgen, generation
from aurore.workshop.fixtures import tiny_model_folder

folder = tiny_model_folder(Path(sys.argv[1]) / "model")
generator = generation.load_generator(str(folder), Config(workdir=folder.parent))
compiled = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
print("shapes", compiled.warm_up(), flush=True)
print("traces after warm-up", compiled.programs.traces, flush=True)
prompts = json.loads(sys.argv[2])
for i, prompt in enumerate(prompts):
    sampling = generation.Sampling(max_new_tokens=5 + 7 * i, temperature=0.5 + 0.3 * i, top_k=i * 20,
                                   top_p=1.0 - 0.1 * i, do_sample=i % 2 == 0, seed=i, num_return_sequences=1 + i % 3)
    texts = compiled.generate_batch([prompt] * (1 + i), sampling)
    assert len(texts) == 1 + i and all(t.startswith(prompt) for row in texts for t in row)
# every row with its own settings, in one batch, streamed
rows = [generation.Row(p, generation.Sampling(max_new_tokens=3 + 6 * (i % 4), temperature=0.4 + 0.4 * i, top_k=10 * i,
                                              top_p=1.0 - 0.05 * i, do_sample=i != 2, seed=100 + i))
        for i, p in enumerate(prompts * 2)]
updates = []
compiled.generate_rows(rows, lambda texts: updates.append(texts) or [True] * len(texts))
assert len(updates) > 2
print("traces at the end", compiled.programs.traces, flush=True)
"""


def test_after_warm_up_varied_requests_trigger_no_compilation(tmp_path):
    """Neither a new trace nor a new XLA compilation (XLA also compiles again for any argument it must treat
    as a constant, without retracing): XLA's dump folder gets one module per compilation, one per warmed shape."""
    dump = tmp_path / "xla"
    env = {"XLA_FLAGS": f"--xla_dump_to={dump}", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", VARIED_REQUESTS, str(tmp_path), json.dumps(PROMPTS)], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    modules = {path.name.split(".")[0] for path in dump.glob("module_*before_optimizations.txt")
               if any(name in path.name for name in ("_decode_rows", "_prefill_rows", "_place_rows"))}
    lines = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines() if line.startswith(("traces", "shapes")))
    # one trace each of the decoder, the prefill and the placing serve every shape
    assert lines["traces after warm-up"] == lines["traces at the end"] == "3"
    # the tiny model's context (64) fits one length bucket: a decoding step per row count (1, 8); prefills of 1, 4
    # and 8 prompts per prompt bucket (16, 64); a placing of each into the row counts it fits in (1 row: 1 prompt;
    # 8 rows: 1, 4 or 8 prompts)
    programs = 2 + 3 * 2 + (1 + 3) * 2
    assert lines["shapes"] == str(programs)
    assert len(modules) == programs, sorted(modules)


def test_sampling_is_repeatable_with_a_seed_and_varies_without(engines):
    _, compiled = engines
    sampling = generation.Sampling(max_new_tokens=12, seed=7, num_return_sequences=2)
    first = compiled.generate_batch(["La rivière"], sampling)
    assert first == compiled.generate_batch(["La rivière"], sampling)
    other = compiled.generate_batch(["La rivière"], generation.Sampling(max_new_tokens=12, seed=8,
                                                                        num_return_sequences=2))
    assert other != first and first[0][0] != first[0][1]


def test_a_top_k_of_one_is_greedy(engines):
    _, compiled = engines
    ids = [compiled.tokenizer("Germain")["input_ids"]]
    greedy = compiled.generate_ids(ids, generation.Sampling(max_new_tokens=10, do_sample=False))
    assert compiled.generate_ids(ids, generation.Sampling(max_new_tokens=10, top_k=1, seed=3)) == greedy


MIXED = [generation.Sampling(max_new_tokens=12, temperature=0.7, top_k=20, top_p=1.0, seed=1),
         generation.Sampling(max_new_tokens=5, temperature=1.3, top_k=0, top_p=0.9, seed=2),
         generation.Sampling(max_new_tokens=9, do_sample=False),
         generation.Sampling(max_new_tokens=16, temperature=0.9, top_k=50, top_p=0.95, seed=3)]


def test_each_row_of_a_batch_keeps_its_own_settings_and_seed(engines):
    """A row's text depends on its prompt, settings and seed, never on the rows it shares a batch with."""
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS]
    together = compiled.generate_ids(ids, MIXED)
    alone = [compiled.generate_ids([row], sampling)[0] for row, sampling in zip(ids, MIXED)]
    assert together == alone
    assert [len(new) <= s.max_new_tokens for new, s in zip(together, MIXED)] == [True] * 4
    assert len(together[3]) > 5  # the long row went on after the short ones had finished
    swapped = compiled.generate_ids(ids[::-1], MIXED[::-1])
    assert swapped == together[::-1]


def test_streaming_yields_growing_texts_that_end_as_the_one_call_does(engines):
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS]
    chunks = []
    last = compiled.decode_ids(ids, MIXED, steps=3, wanted=lambda so_far: chunks.append(so_far) or [True] * 4)
    assert len(chunks) >= 4 and last == compiled.generate_ids(ids, MIXED)
    for before, after in zip(chunks, chunks[1:]):
        assert all(a[: len(b)] == b for a, b in zip(after, before))  # each row only grows
    assert max(len(new) for new in chunks[0]) == 1  # the first report comes after the first token


def test_rows_nobody_wants_stop_and_the_batch_ends_when_none_is_wanted(engines):
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS[:2]]
    settings = [generation.Sampling(max_new_tokens=40, top_k=0, top_p=1.0, temperature=2.0, seed=s) for s in (5, 6)]
    wanted = [True, True]
    calls = 0

    def still_wanted(so_far):
        nonlocal calls, stopped_at
        calls += 1
        if calls == 2:
            wanted[0] = False  # the first page was closed
            stopped_at = len(so_far[0])
        if calls == 4:
            wanted[1] = False
        return wanted

    stopped_at = None
    new = compiled.decode_ids(ids, settings, steps=2, wanted=still_wanted)
    # reports after 1, 3, 5, 7 tokens (the first as soon as there is one)
    assert len(new[0]) == stopped_at == 3 and len(new[1]) == 7 and calls == 4


def test_a_row_that_joins_running_rows_writes_what_it_writes_alone(engines):
    """Continuous batching: a request takes a free row while others are half-way; nobody's text changes."""
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS]
    alone = [compiled.generate_ids([row], sampling)[0] for row, sampling in zip(ids, MIXED)]
    slots = compiled.open_slots()
    first = slots.admit(ids[3], [MIXED[3]])[0]
    slots.advance(5)
    assert len(slots.new_ids(first)) == 5 and not slots.finished(first)
    others = [slots.admit(row, [sampling])[0] for row, sampling in zip(ids[:3], MIXED[:3])]
    assert len(slots.rows) == xla_programs.BATCH_BUCKETS[-1]  # grew from one row to a batch, mid-way
    while slots.busy:
        slots.advance(3)
    assert [slots.new_ids(slot) for slot in others + [first]] == alone[:3] + alone[3:]
    # one prompt, several rows (one prefill): each row as if alone
    shared = slots.admit(ids[0], [MIXED[0], MIXED[3]])
    while slots.busy:
        slots.advance(4, refill=True)
    assert [slots.new_ids(slot) for slot in shared] == compiled.generate_ids([ids[0]] * 2, [MIXED[0], MIXED[3]])


def test_more_rows_than_slots_take_the_slots_others_leave(engines):
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS] * 3
    settings = [dataclasses.replace(MIXED[i % 4], seed=i) for i in range(12)]
    together = compiled.generate_ids(ids, settings)
    assert together == [compiled.generate_ids([row], [s])[0] for row, s in zip(ids, settings)]


def test_a_rows_draw_does_not_depend_on_a_row_that_needs_the_whole_vocabulary():
    """Rows whose kept tokens are all among the candidates draw the same token whether the batch went through the
    candidates (every row inside) or the whole vocabulary (one flat row with top-k off reaches past them)."""
    rng = np.random.default_rng(0)
    peaked = tf.constant(rng.normal(size=(100, 3000)) * 8.0, tf.float32)
    flat = tf.constant(rng.normal(size=(1, 3000)) * 0.1, tf.float32)
    settings = dict(temperature=tf.constant([0.9] * 101), top_k=tf.constant([40] * 100 + [0]),
                    top_p=tf.constant([0.95] * 101))
    assert not warpers._candidates(flat, 0.9, 0, 0.95).inside.numpy().all()  # the flat row needs the whole vocabulary
    together = warpers.sample_tokens(tf.concat([peaked, flat], 0), seeds=tf.range(101), step=tf.constant(3),
                                     **settings).numpy()
    alone = warpers.sample_tokens(peaked, seeds=tf.range(100), step=tf.constant(3),
                                  **{key: value[:100] for key, value in settings.items()}).numpy()
    np.testing.assert_array_equal(together[:100], alone)
    assert len(set(alone.tolist())) > 10  # real draws, not always the likeliest token
    # and beside a row with a top-k of 100 (beyond the 64 candidates: it draws over the whole vocabulary)
    wider = warpers.sample_tokens(tf.concat([peaked, peaked[:1]], 0), seeds=tf.range(101), step=tf.constant(3),
                                  **{**settings, "top_k": tf.constant([40] * 100 + [100])}).numpy()
    np.testing.assert_array_equal(wider[:100], alone)
    # and the other way: flat rows drawn by rejection write the same alone as beside rows that need less
    flats = tf.constant(rng.normal(size=(20, 3000)) * 0.1, tf.float32)
    mixed = warpers.sample_tokens(tf.concat([flats, peaked[:20]], 0), seeds=tf.range(40), step=tf.constant(3),
                                  temperature=tf.constant([0.9] * 40), top_k=tf.constant([0] * 20 + [40] * 20),
                                  top_p=tf.constant([0.3] * 40)).numpy()
    flat_alone = [warpers.sample_tokens(flats[i:i + 1], seeds=tf.constant([i]), step=tf.constant(3),
                                        temperature=tf.constant([0.9]), top_k=tf.constant([0]),
                                        top_p=tf.constant([0.3])).numpy()[0] for i in range(20)]
    np.testing.assert_array_equal(mixed[:20], flat_alone)


def test_prompts_that_join_together_are_read_in_one_prefill_and_write_what_each_writes_alone(engines):
    _, compiled = engines
    ids = [compiled.tokenizer(p)["input_ids"] for p in PROMPTS]
    alone = [compiled.generate_ids([row], sampling)[0] for row, sampling in zip(ids, MIXED)]
    slots = compiled.open_slots()
    programs, prefills = compiled.programs, []
    traces, prefill = programs.traces, programs.prefill
    programs.prefill = lambda tokens: prefills.append(tokens.shape) or prefill(tokens)
    try:
        admitted = slots.admit_many([(row, [sampling]) for row, sampling in zip(ids, MIXED)])
    finally:
        programs.prefill = prefill
    assert len(prefills) == 1 and prefills[0][0] == 4 and programs.traces == traces  # four prompts, one pass
    while slots.busy:
        slots.advance(5)
    assert [slots.new_ids(s[0]) for s in admitted] == alone
