# The workshop image: docker build -t text-gen .
# Run a step with your own copy of the exercises mounted (data/ and models/ are written there, so nothing is
# lost when the container stops; the step runs as the folder's owner, whatever your UID):
#   docker run --rm -v $PWD/aurore:/aurore text-gen python aurore/1_prepare_dataset_solution.py
#   docker run --rm -p 127.0.0.1:8080:8080 -v $PWD/aurore:/aurore text-gen     # step 5's page (the solution), port 8080
# Build with network once and bake the books and the base model in, so the room needs no network:
#   docker build --build-arg PRELOAD=1 -t text-gen .
# BASE: any Debian-based image with python3 3.11-3.13 (a `python` binary is not needed), e.g. a local one when
# Docker Hub cannot be reached: docker build --build-arg BASE=aurore-base:bookworm -t text-gen .
# Both architectures of the room (Intel/AMD PCs, Apple silicon and ARM laptops), from one machine with buildx:
#   docker buildx build --platform linux/amd64,linux/arm64 -t text-gen .
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    TF_USE_LEGACY_KERAS=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/

# tini runs as PID 1 and passes `docker stop` on to the command (Python as PID 1 ignores SIGTERM); setpriv
# (util-linux, a package of its own in newer Debian) lets the entrypoint run the command as the folder's owner.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && { command -v setpriv > /dev/null || apt-get install -y --no-install-recommends setpriv; } \
    && rm -rf /var/lib/apt/lists/*

# The one pin set (requirements.txt, what `python -m aurore setup` installs), with pip in a virtualenv: the image
# needs nothing else, and PYTHONPATH=/ finds the package at /aurore (no install of the project). The pin file sits
# beside the package, as in the repository, for `python -m aurore doctor`.
COPY requirements.txt /requirements.txt
RUN python3 -m venv /opt/venv \
    && PIP_NO_CACHE_DIR=1 /opt/venv/bin/pip install --quiet --disable-pip-version-check -r /requirements.txt

COPY docker/entrypoint.sh /usr/local/bin/aurore-entrypoint
# The image's own copy of the exercises (used when no folder is mounted) belongs to UID 1000.
COPY --chown=1000:1000 aurore /aurore
WORKDIR /

# Optional, declared here so that a PRELOAD build reuses every layer above from a plain one: cache the five books
# and the base model (converted to TensorFlow, tokenizer included) inside the image, then point the steps at them:
# the books folder serves as a Gutenberg mirror, the converted folder as the base model. The hub's download cache
# is only needed for the conversion, so it is not kept.
ARG PRELOAD=
RUN if [ -n "$PRELOAD" ]; then \
      export AURORE_WORKDIR=/opt/aurore-cache HF_HOME=/tmp/hf-preload \
      && python aurore/1_prepare_dataset_solution.py \
      && python -m aurore download-model \
      && rm -rf /tmp/hf-preload; \
    fi
ENV AURORE_GUTENBERG_MIRROR=${PRELOAD:+/opt/aurore-cache/data/books} \
    AURORE_BASE_MODEL=${PRELOAD:+/opt/aurore-cache/models/converted/benjamin--gpt2-wechsel-french} \
    HF_HUB_OFFLINE=${PRELOAD:+1}

EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/bin/sh", "/usr/local/bin/aurore-entrypoint"]
# The default command serves step 5's solution; a participant's own: ... text-gen python aurore/5_flask.py --host 0.0.0.0
CMD ["python", "aurore/5_flask_solution.py", "--host", "0.0.0.0", "--port", "8080"]
