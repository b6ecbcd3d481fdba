# HomeIQ engine: the add-on image. Debian, not Alpine: OpenVINO ships glibc wheels only.
# The base is written out (the Supervisor passes no BUILD_FROM without a build.yaml) and pinned by
# version: a multi-arch image (amd64, aarch64), so every build starts from the same layers.
FROM ghcr.io/home-assistant/base-debian:bookworm-2026.06.0

# Passed by the builder actions / the Supervisor; used for labels only.
ARG BUILD_VERSION=0.2.0
ARG BUILD_ARCH=amd64
# Option A (default): models are downloaded on first use into /data/models.
# Option B: PREFETCH_MODELS=true downloads (and converts) them at build time (a bigger image
# that works offline from the first start); PREFETCH_PROFILE picks which roles.
ARG PREFETCH_MODELS=false
ARG PREFETCH_PROFILE=full
# The default image serves OpenVINO IR and ONNX models without torch (about 350 MB of Python
# packages). WITH_CONVERTER=true adds the converter (torch CPU, transformers, optimum-intel, nncf;
# about 1.7 GB): PyTorch checkpoints and static INT8 variants a repository does not publish.
ARG WITH_CONVERTER=false

# Models are downloaded once into /data/models: no chunk cache of the hub's Xet transfers beside them
# (up to 10 GB in the container by default), no telemetry.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_XET_CHUNK_CACHE_SIZE_BYTES=0

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/homeiq
# Every package of the runtime is pinned by the lock (constraints): each build installs the same set.
COPY addon/requirements.txt addon/requirements-runtime.lock addon/requirements-convert.txt ./
RUN python3 -m venv venv \
    && venv/bin/pip install -r requirements.txt -c requirements-runtime.lock \
    && venv/bin/pip check
# torchvision comes with optimum-intel and breaks transformers beside the CPU torch; text models need
# none. Any failing command fails the build: a broken converter must not ship.
RUN if [ "${WITH_CONVERTER}" = "true" ]; then \
        venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
            -r requirements-convert.txt -c requirements-runtime.lock \
        && venv/bin/pip uninstall -y torchvision \
        && venv/bin/python -c "import torch, transformers, optimum.intel, nncf"; \
    fi

# The add-on's own package goes on the venv's path as it is (a .pth file): no build back-end is
# fetched at build time, so nothing outside the lock enters the image.
COPY addon/homeiq_addon/ ./app/homeiq_addon/
RUN purelib="$(venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && echo /opt/homeiq/app > "${purelib}/homeiq.pth" \
    && venv/bin/python -c "import homeiq_addon.models.registry"

RUN if [ "${PREFETCH_MODELS}" = "true" ]; then \
        venv/bin/python3 -m homeiq_addon fetch --data-dir /opt/homeiq/seed --profile "${PREFETCH_PROFILE}" \
        && rm -f /opt/homeiq/seed/token; \
    fi

COPY rootfs /

LABEL \
    io.hass.version="${BUILD_VERSION}" \
    io.hass.arch="${BUILD_ARCH}" \
    io.hass.type="app" \
    io.hass.name="HomeIQ Engine" \
    io.hass.description="Local OpenVINO model stack for HomeIQ automation suggestions" \
    org.opencontainers.image.title="HomeIQ Engine" \
    org.opencontainers.image.description="Local OpenVINO model stack for HomeIQ automation suggestions" \
    org.opencontainers.image.source="https://github.com/homeiq-dev/homeiq" \
    org.opencontainers.image.licenses="Apache-2.0"

EXPOSE 8765
# The base image's ENTRYPOINT is s6-overlay's /init; it starts rootfs/etc/s6-overlay/s6-rc.d.
