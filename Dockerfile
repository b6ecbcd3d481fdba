# HomeIQ engine: the add-on image. Debian, not Alpine: OpenVINO ships glibc wheels only.
# The Supervisor no longer passes BUILD_FROM without a build.yaml, so the base is written out.
FROM ghcr.io/home-assistant/base-debian:bookworm

# Passed by the Supervisor / builder; used for labels only.
ARG BUILD_VERSION=0.1.0
ARG BUILD_ARCH=amd64
# Option A (default): models are downloaded and converted on first use into /data/models.
# Option B: PREFETCH_MODELS=true downloads and converts them at build time (a bigger image
# that works offline from the first start); PREFETCH_PROFILE picks which roles.
ARG PREFETCH_MODELS=false
ARG PREFETCH_PROFILE=full
# The converter (torch CPU + optimum-intel) turns hub checkpoints into OpenVINO IR once.
# Without it only pre-converted OpenVINO repos and baked-in models work.
ARG WITH_CONVERTER=true

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/homeiq
COPY addon/requirements.txt addon/requirements-convert.txt ./
RUN python3 -m venv venv \
    && venv/bin/pip install -r requirements.txt \
    && if [ "${WITH_CONVERTER}" = "true" ]; then \
        venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements-convert.txt \
        && venv/bin/pip uninstall -y torchvision || true; \
    fi

COPY addon/ ./src/
RUN venv/bin/pip install --no-deps ./src && rm -rf ./src

RUN if [ "${PREFETCH_MODELS}" = "true" ]; then \
        venv/bin/python3 -m homeiq_addon fetch --data-dir /opt/homeiq/seed --profile "${PREFETCH_PROFILE}" \
        && rm -f /opt/homeiq/seed/token; \
    fi

COPY rootfs /

LABEL \
    io.hass.version="${BUILD_VERSION}" \
    io.hass.arch="${BUILD_ARCH}" \
    io.hass.type="app" \
    org.opencontainers.image.title="HomeIQ Engine" \
    org.opencontainers.image.description="Local OpenVINO model stack for HomeIQ automation suggestions" \
    org.opencontainers.image.source="https://github.com/homeiq-dev/homeiq" \
    org.opencontainers.image.licenses="Apache-2.0"

EXPOSE 8765
# The base image's ENTRYPOINT is s6-overlay's /init; it starts rootfs/etc/s6-overlay/s6-rc.d.
