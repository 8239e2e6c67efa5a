# syntax=docker/dockerfile:1.7
# The project's RunPod emulator running the bundled handlers on small CPU models: the
# "RunPod" of deploy/compose.yaml. One image instead of the GPU worker images (which are
# CUDA builds for RunPod, see handlers/*/Dockerfile).
#
# Build from the repository root (compose.yaml does):
#   docker build -f deploy/emulator.Dockerfile -t dryapi-emulator:local .
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/data/huggingface

# CPU torch first: from the default index pip would pull the multi-GB CUDA build; the
# handlers extra pins the same version, so the next install keeps this one.
RUN pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY handlers ./handlers
RUN pip install ".[handlers]"

# Non-root; HF_HOME is a named volume (compose's hf-cache), created owned by this user so
# model downloads survive `docker compose down` without running as root.
RUN useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin dryapi \
 && mkdir -p "$HF_HOME" && chown 10001 "$HF_HOME"
WORKDIR /tmp
USER 10001
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os,urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8001/v2/local-embeddings/health', headers={'Authorization': os.environ.get('RUNPOD_API_KEY', '')}), timeout=2)"

# Handlers load in the background at start (preload); the first job waits for its model.
# Models and knobs come from the environment (compose.yaml mirrors routing.yaml's `local:`).
CMD ["dryapi-gateway", "emulator", "--host", "0.0.0.0", "--port", "8001", \
     "--endpoint", "local-chat=handlers.chat.handler:handler", \
     "--endpoint", "local-images=handlers.images.handler:handler", \
     "--endpoint", "local-transcribe=handlers.transcribe.handler:handler", \
     "--endpoint", "local-embeddings=handlers.embeddings.handler:handler", \
     "--endpoint", "local-speech=handlers.speech.handler:handler", \
     "--endpoint", "local-music=handlers.music.handler:handler"]
