# syntax=docker/dockerfile:1
# Hearth image. One Dockerfile, two flavours of torch:
#   docker build --build-arg TORCH_FLAVOR=cpu \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t hearth:cpu .
#   docker build --build-arg TORCH_FLAVOR=gpu -t hearth:gpu .
# Without TORCH_INDEX_URL the cpu flavour still works but pulls PyPI's default (CUDA) torch wheel.

ARG PYTHON_IMAGE=python:3.11-slim
ARG TORCH_FLAVOR=cpu

# -- dependencies: one virtualenv per flavour, copied whole into the runtime stage ---------------
FROM ${PYTHON_IMAGE} AS deps-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements/ /tmp/requirements/

FROM deps-base AS deps-cpu
ARG TORCH_INDEX_URL=""
RUN /opt/venv/bin/pip install \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r /tmp/requirements/cpu.txt

FROM deps-base AS deps-gpu
RUN /opt/venv/bin/pip install -r /tmp/requirements/gpu.txt

# BuildKit builds only the flavour named here. (A stage, not an image: no tag to pin.)
# hadolint ignore=DL3006
FROM deps-${TORCH_FLAVOR} AS deps

# -- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG TORCH_FLAVOR=cpu
LABEL org.opencontainers.image.title="hearth" \
      io.hearth.torch-flavor="${TORCH_FLAVOR}"

# HF_HOME: hub downloads (where a site allows them) persist in the data volume.
# NVIDIA_DRIVER_CAPABILITIES: jobs/gpus.py runs nvidia-smi, which the NVIDIA runtime mounts only
# with "utility"; harmless on the cpu flavour.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEARTH_DATA_DIR=/data \
    HF_HOME=/data/cache/huggingface \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# A real home directory: torch, triton and friends write caches under ~ at run time.
# /data is created here, owned by hearth: a fresh named volume copies this owner and mode.
RUN groupadd --system --gid 10001 hearth \
    && useradd --system --uid 10001 --gid hearth --create-home --home-dir /home/hearth \
        --shell /usr/sbin/nologin hearth \
    && install -d -o hearth -g hearth -m 0700 /data

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
# Code stays root-owned: the app user reads it but cannot rewrite it.
COPY . /app

# Production settings refuse to import without these; throwaway values live in this RUN only,
# never in the image's environment or history of ENV/ARG (the key is 32 zero bytes, base64).
RUN SECRET_KEY="collectstatic-only-throwaway-value-not-a-real-secret" \
    HEARTH_MASTER_KEY="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" \
    HEARTH_AUDIT_KEY="collectstatic-only-throwaway-audit-key" \
    DATABASE_URL="sqlite:////tmp/collectstatic.sqlite3" \
    REDIS_URL="redis://127.0.0.1:6379/0" \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    python manage.py collectstatic --noinput --verbosity 0

# GUNICORN_CMD_ARGS tunes gunicorn without overriding CMD (flags given in CMD would win over it).
ENV DJANGO_SETTINGS_MODULE=config.settings.production \
    GUNICORN_CMD_ARGS="--workers 2 --threads 4 --timeout 600"

# Numeric (= hearth), so orchestrators can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
