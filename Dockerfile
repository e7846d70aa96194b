# syntax=docker/dockerfile:1
# The carousel translation service on the shipped models in models/, CPU only.
#
#   docker build -t carousel .
#   docker run --rm -p 5000:5000 carousel                     # http://127.0.0.1:5000
#   docker run --rm -p 5000:5000 -e CAROUSEL_API_KEYS=key1 carousel
#   docker build --build-arg TORCH_PIP_ARGS= -t carousel .    # torch from your own pip configuration
#
# Settings come from CAROUSEL_* variables (service/settings.py). No Docker engine runs in this project's
# CI, so scripts/dockerfile_steps.py performs these steps outside Docker (tests/test_dockerfile.py):
# keep to ARG, FROM, ENV, WORKDIR, COPY, RUN, USER, EXPOSE, HEALTHCHECK and CMD (it refuses others), to
# $VARIABLES in RUN commands only, to paths relative to WORKDIR in them, and to useradd in a RUN of its own.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
# PyTorch's CPU wheel index: PyPI's Linux torch wheels pull in gigabytes of CUDA libraries.
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first and alone: the largest layer changes least. The project's own `torch>=2.3` is then met.
# The pip cache lives in a build cache mount, not in the image.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install "torch==${TORCH_VERSION}" ${TORCH_PIP_ARGS}

# The project's packages only (.dockerignore keeps out data/corpora, runs/, tests/ and caches).
COPY pyproject.toml README.md ./
COPY carousel/ carousel/
COPY data/ data/
COPY model/ model/
COPY training/ training/
COPY service/ service/
COPY formats/ formats/
COPY evaluation/ evaluation/
COPY routing/ routing/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install . && rm -rf build *.egg-info

# Models last: they change more often than the code and are the only layer retraining replaces.
COPY models/ models/

RUN useradd --create-home --uid 10001 carousel
USER carousel

ENV CAROUSEL_MODELS_DIR=/app/models
EXPOSE 5000
# /health answers as soon as the process runs; /ready waits for the models. Slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
# SIGTERM (docker stop) finishes the requests in flight and exits; `carousel` is PID 1 in exec form.
CMD ["carousel", "serve", "--host", "0.0.0.0", "--port", "5000"]
