"""The web app's worker on the compiled decoder: requests join a running batch as soon as a row is free."""

import threading
import time

import pytest

from aurore.config import Config
from aurore.engines import fastgen, generation
from aurore.errors import AuroreError
from aurore.web.serving import GenerationService


@pytest.fixture(scope="module")
def compiled(tiny_model_dir):
    generator = generation.load_generator(str(tiny_model_dir), Config(workdir=tiny_model_dir.parent))
    return fastgen.CompiledGenerator(generator.model, generator.tokenizer)


class SlowSlots:
    """The real slots, each call 30 ms slower: long enough for a request to arrive while others run."""

    def __init__(self, slots):
        self.slots, self.calls = slots, 0

    def advance(self, steps, refill=False):
        self.calls += 1
        time.sleep(0.03)
        return self.slots.advance(steps, refill)

    def __getattr__(self, name):
        return getattr(self.slots, name)


class SlowEngine:
    def __init__(self, compiled):
        self.compiled = compiled

    def open_slots(self):
        self.slots = SlowSlots(self.compiled.open_slots())
        return self.slots

    def __getattr__(self, name):
        return getattr(self.compiled, name)


def sampling(tokens: int, seed: int, **settings) -> generation.Sampling:
    return generation.Sampling(max_new_tokens=tokens, seed=seed, **settings)


def long_text_seed(compiled, prompt: str, tokens: int) -> int:
    """A seed whose text runs to its last token (a random tiny model may write end-of-text early)."""
    ids = compiled.tokenizer(prompt)["input_ids"]
    return next(seed for seed in range(50) if len(compiled.generate_ids([ids], sampling(tokens, seed))[0]) == tokens)


def test_a_short_request_arriving_during_a_long_one_is_answered_first(compiled):
    service = GenerationService(SlowEngine(compiled), timeout=60)
    seed = long_text_seed(compiled, "La", 56)
    long = service.submit("La", sampling(56, seed), streaming=True)
    while long.version == 0:  # its first token is out: it is running
        time.sleep(0.005)
    short = service.submit("Le soir", sampling(4, 1))
    assert service.result(short) == compiled.generate_rows(short.rows)
    assert not long.done  # the short one did not wait for the long one's 56 tokens
    assert service.result(long) == compiled.generate_rows(long.rows)


def test_concurrent_requests_with_mixed_settings_get_what_each_gets_alone(compiled):
    service = GenerationService(compiled, timeout=60)
    requests = [("La rivière", sampling(4 + 5 * i, i, temperature=0.6 + 0.2 * i, top_k=10 * i,
                                        top_p=1.0 - 0.05 * i, do_sample=i != 3, num_return_sequences=1 + i % 3))
                for i in range(10)]  # 20 rows: more than 8, so rows wait for free slots
    answers = {}

    def ask(i):
        answers[i] = service.generate(*requests[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, (prompt, settings) in enumerate(requests):
        assert answers[i] == compiled.generate_rows(generation.rows_for(prompt, settings)), i


def test_a_request_too_long_for_the_model_fails_alone(compiled):
    service = GenerationService(compiled, timeout=60)
    running = service.submit("La", sampling(30, 2))
    too_long = service.submit("La " * 40, sampling(40, 3))
    with pytest.raises(AuroreError, match="mémoire du modèle"):
        service.result(too_long)
    assert service.result(running) == compiled.generate_rows(running.rows)


def test_a_closed_stream_frees_its_rows_for_the_next_request(compiled):
    engine = SlowEngine(compiled)
    service = GenerationService(engine, timeout=60)
    seed = long_text_seed(compiled, "La", 56)
    updates = service.stream("La", sampling(56, seed, num_return_sequences=4))
    next(updates)
    updates.close()  # the page was closed after the first token
    calls = engine.slots.calls
    texts = service.generate("Le", sampling(3, 4))
    assert engine.slots.calls - calls <= 2  # not the 7 calls the closed texts' 55 tokens would have taken
    assert texts == compiled.generate_rows(generation.rows_for("Le", sampling(3, 4)))


def test_the_service_is_busy_while_a_request_waits_or_is_written_and_the_warm_up_yields_until_then(compiled):
    from aurore.web import yield_to_requests

    service = GenerationService(SlowEngine(compiled), timeout=60)
    assert not service.busy
    seed = long_text_seed(compiled, "La", 40)
    job = service.submit("La", sampling(40, seed), streaming=True)
    assert service.busy  # queued, or already being written
    yield_to_requests([service], limit=60)  # returns once the text is written, long before the limit
    assert job.done and not service.busy
    assert len(compiled.tokenizer(job.texts[0])["input_ids"]) > 30


def test_the_warm_up_yields_at_most_its_limit_to_a_steady_stream_of_requests():
    from aurore.web import yield_to_requests

    class AlwaysBusy:
        busy = True

    start = time.monotonic()
    yield_to_requests([AlwaysBusy()], limit=0.3)
    assert 0.3 <= time.monotonic() - start < 5


def test_a_second_models_warm_up_waits_for_the_first_models_request(tiny_model_dir):
    """With the base model beside the fine-tuned one, the first request to the fine-tuned model is answered
    before the base model's programs are prepared (on two cores they would slow it)."""
    from aurore import web

    class SlowCompiled(fastgen.CompiledGenerator):
        def open_slots(self):
            return SlowSlots(super().open_slots())

    generator = generation.load_generator(str(tiny_model_dir), Config(workdir=tiny_model_dir.parent))
    first = GenerationService(SlowCompiled(generator.model, generator.tokenizer), timeout=60, ready=threading.Event())
    second = GenerationService(SlowCompiled(generator.model, generator.tokenizer), timeout=60,
                               ready=threading.Event())
    seen = {}

    def second_warm_up(*args, **kwargs):
        seen["first request done"] = job.done
        raise RuntimeError("stop here")  # web._warm_up says so and marks every model ready

    second.engine.warm_up = second_warm_up
    info = generation.ModelInfo(str(tiny_model_dir), False)
    models = web.Models({"gpt2": web.Served(first, info), "base": web.Served(second, info)})
    seed = long_text_seed(first.engine, "La", 40)
    job = first.submit("La", sampling(40, seed))
    web._warm_up(models)
    assert seen == {"first request done": True}
    assert second.ready.is_set()


def test_after_a_failed_step_the_service_is_no_longer_busy(compiled):
    class FailingSlots(SlowSlots):
        def advance(self, steps, refill=False):
            raise RuntimeError("le calcul a échoué")

    class FailingEngine(SlowEngine):
        def open_slots(self):
            return FailingSlots(self.compiled.open_slots())

    service = GenerationService(FailingEngine(compiled), timeout=60)
    with pytest.raises(RuntimeError, match="échoué"):
        service.generate("La", sampling(8, 0))
    assert not service.busy  # the warm-up would otherwise wait its limit before every program
