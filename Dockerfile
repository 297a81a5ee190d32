# The workshop image: docker build -t text-gen .
# Run a step with your own copy of the exercises mounted (data/ and models/ are written there, so nothing is
# lost when the container stops):
#   docker run -v $PWD/aurore:/aurore text-gen python aurore/1_prepare_dataset_solution.py
# Build with network once and bake the books and the base model in, so the room needs no network:
#   docker build --build-arg PRELOAD=1 -t text-gen .
FROM python:3.11-slim

ARG PRELOAD=
ENV PYTHONUNBUFFERED=1 \
    TF_USE_LEGACY_KERAS=1 \
    HF_HOME=/opt/hf-cache \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/

# Same set-up as `make` and CI: the pinned requirements in a virtualenv.
COPY requirements.txt /opt/aurore-src/requirements.txt
COPY .ci/install.sh /opt/aurore-src/.ci/install.sh
RUN bash /opt/aurore-src/.ci/install.sh /opt/venv requirements.txt \
    && rm /opt/venv/lib/python3.11/site-packages/aurore-repo.pth

COPY aurore /aurore
RUN useradd --create-home --uid 1000 participant \
    && mkdir -p /opt/hf-cache /opt/aurore-cache \
    && chown -R participant /opt/hf-cache /opt/aurore-cache /aurore
USER 1000
WORKDIR /

# Optional: cache the five books and the base model (converted to TensorFlow) inside the image, then point the
# steps at them: the books folder serves as a Gutenberg mirror, the converted folder as the base model.
RUN if [ -n "$PRELOAD" ]; then \
      AURORE_WORKDIR=/opt/aurore-cache python aurore/1_prepare_dataset_solution.py \
      && AURORE_WORKDIR=/opt/aurore-cache python -m aurore download-model; \
    fi
ENV AURORE_GUTENBERG_MIRROR=${PRELOAD:+/opt/aurore-cache/data/books} \
    AURORE_BASE_MODEL=${PRELOAD:+/opt/aurore-cache/models/converted/benjamin--gpt2-wechsel-french} \
    HF_HUB_OFFLINE=${PRELOAD:+1}

EXPOSE 8080
CMD ["python", "aurore/5_flask.py", "--host", "0.0.0.0", "--port", "8080"]
