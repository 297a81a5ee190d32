"""Step 5: serve the model on a web page (a form at /generate) and a JSON API (/api/generate).

Run: python aurore/5_flask.py                 then open http://127.0.0.1:8080/generate
     docker run -p 8080:8080 -v $PWD/aurore:/aurore text-gen      (the image serves on 0.0.0.0)

The model is loaded once, before the server starts: the fine-tuned model of step 3 if it exists, else the base
model (the page says which). Requests are served by waitress, a production WSGI server, never Flask's debug
server; generation runs in one worker that batches simultaneous requests, with XLA-compiled decoding
(aurore/fastgen.py) warmed up before the first request.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse
import time

from aurore import fastgen, generation, minigpt, web
from aurore.config import parse_args
from aurore.errors import friendly_errors
from aurore.serving import GenerationService

WARM_LENGTHS = (128, 256)  # buffer lengths compiled at start-up: prompt + new tokens up to 256


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface, "
                        "as in Docker; default: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=8, help="web threads (generation itself uses one worker)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a waiting request gets a 503")
    parser.add_argument("--engine", choices=["compiled", "eager"], default="compiled",
                        help="compiled: XLA decoding, ~10x faster, compiled at start-up; eager: the pipeline")


def build_app(config, flags):
    """Load the model once and wire it to the web app."""
    name, finetuned = generation.choose_model(config)
    print(f"Loading {'the fine-tuned' if finetuned else 'the BASE (not fine-tuned)'} model: {name}")
    generator = generation.load_generator(name, config)
    if flags.engine == "compiled":
        engine = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
        start = time.perf_counter()
        traces = engine.warm_up(WARM_LENGTHS)
        print(f"Compiled {traces} shapes in {time.perf_counter() - start:.0f} s "
              f"(longer requests compile once, on first use)")
    else:
        engine = generation.PipelineEngine(generator)
    service = GenerationService(engine, timeout=flags.timeout)
    alternatives = {}
    if minigpt.exists(config):  # step 6's model, offered as a second choice
        mini = GenerationService(minigpt.MiniGPTEngine(config.mini_gpt_dir), timeout=flags.timeout)
        alternatives["mini-gpt"] = (mini, web.ModelInfo(str(config.mini_gpt_dir), False, from_scratch=True))
        print(f"Also serving the from-scratch model of step 6: {config.mini_gpt_dir}")
    return web.create_app(service, web.ModelInfo(name=name, finetuned=finetuned), alternatives)


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    from waitress import serve

    config, flags = parse_args(__doc__.splitlines()[0], argv, extra=_extra_flags)
    app = build_app(config, flags)
    print(f"Serving on http://{flags.host}:{flags.port}/generate  (Ctrl-C to stop)")
    serve(app, host=flags.host, port=flags.port, threads=flags.threads)


if __name__ == "__main__":
    main()
