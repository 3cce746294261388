# bids_taskenc BIDS-App image.
#
#   docker build -t bids_taskenc:0.1.0 .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" \
#       -v /data/bids:/data:ro -v /data/out:/out bids_taskenc:0.1.0 /data /out participant
#
# Build arguments (see docs/containers.md):
#   TORCH_SPEC       pip requirement for torch; the default is the PyPI build, which on
#                    Linux x86_64 is the CUDA build (it pulls the nvidia-* runtime wheels).
#   TORCH_INDEX_URL  extra index for torch, e.g. https://download.pytorch.org/whl/cu128
#                    (empty: PyPI only).
#   TORCH_WHEEL_DIR  folder of the build context holding local wheels (e.g. a CPU torch
#                    wheel for an offline test build); used as pip --find-links. The default
#                    folder is empty and ignored by git.
#   EXTRAS           optional extras of the package to install, comma-separated (default
#                    "flatmaps": pycortex flatmaps in the reports; empty: none). Extras may
#                    need a compiler (pycortex is sdist-only): the builder then gets
#                    build-essential + python3-dev, the final image never.
#   PREFETCH=1       bake the Taskonomy encoder weights and the reference affinities into
#                    the image (needs internet at build time); default 0.
#   PREFETCH_TASKS   tasks for `bids_taskenc-models fetch --tasks` (empty: the paper's 21).
#   VERSION          image version label; keep equal to bids_taskenc/__about__.py.

# --------------------------------------------------------------------------- builder
FROM debian:bookworm-slim AS builder

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
ARG TORCH_WHEEL_DIR=tests/container/wheels
ARG EXTRAS="flatmaps"

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt

# The core dependencies ship manylinux wheels for CPython 3.11 (Debian bookworm's python3);
# the optional extras may not (pycortex is an sdist with C extensions), so the builder gets
# a compiler when extras are asked for. Compilers live in this stage only.
RUN set -eu; \
    tools=""; \
    if [ -n "${EXTRAS}" ]; then tools="build-essential python3-dev"; fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv ca-certificates ${tools}; \
    rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first: the largest layer, and it changes least often.
COPY ${TORCH_WHEEL_DIR}/ /tmp/wheels/
RUN set -eu; \
    extra=""; \
    if [ -n "${TORCH_INDEX_URL}" ]; then extra="--extra-index-url ${TORCH_INDEX_URL}"; fi; \
    pip install --find-links /tmp/wheels ${extra} "${TORCH_SPEC}"; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# The package itself, from the source tree (a regular, non-editable install), with its
# optional extras.
COPY pyproject.toml README.md /src/
COPY boilerplate/ /src/boilerplate/
COPY bids_taskenc/ /src/bids_taskenc/
RUN pip install --find-links /tmp/wheels "/src${EXTRAS:+[${EXTRAS}]}" \
 && rm -rf /tmp/wheels \
 && bids_taskenc --version

# --------------------------------------------------------------------------- final
FROM debian:bookworm-slim

ARG VERSION=0.1.0
ARG PREFETCH=0
ARG PREFETCH_TASKS=""

LABEL org.opencontainers.image.title="bids_taskenc" \
      org.opencontainers.image.description="BIDS-App: voxelwise encoding models of Taskonomy task representations (Neural Taskonomy)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/bids-apps/bids_taskenc" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="https://github.com/bids-apps/bids_taskenc/blob/main/docs/containers.md"

# Runtime only: the interpreter the venv links to and CA certificates for downloads.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log

COPY --from=builder /opt/venv /opt/venv
COPY container/pycortex/options.cfg /opt/bids_taskenc/config/pycortex/options.cfg

# Fixed data folders inside the image (never $HOME: Singularity mounts the host's home
# over it); caches that must be writable go to /tmp so the image can run read-only and
# as any UID (docker run --user "$(id -u)").
#   BIDS_TASKENC_MODELS  Taskonomy weights store (bids_taskenc/features/store.py)
#   XDG_CACHE_HOME       base of the reference-affinities cache,
#                        $XDG_CACHE_HOME/bids_taskenc/reference (bids_taskenc/group/reference.py)
#   XDG_CONFIG_HOME      where pycortex reads its options.cfg (baked, read-only: filestore
#                        /opt/bids_taskenc/pycortex/db, cache /tmp/pycortex_cache)
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BIDS_TASKENC_CONTAINER=docker \
    BIDS_TASKENC_IMAGE="bids_taskenc:${VERSION}" \
    BIDS_TASKENC_MODELS=/opt/bids_taskenc/models \
    XDG_CACHE_HOME=/opt/bids_taskenc/cache \
    XDG_CONFIG_HOME=/opt/bids_taskenc/config \
    TORCH_HOME=/opt/bids_taskenc/torch \
    TEMPLATEFLOW_HOME=/opt/bids_taskenc/templateflow \
    NILEARN_DATA=/opt/bids_taskenc/nilearn_data \
    MPLCONFIGDIR=/tmp/matplotlib \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    TRITON_CACHE_DIR=/tmp/triton

# PREFETCH=1 bakes the weights and the reference affinities, as fMRIPrep bakes templates.
# The folders under /opt/bids_taskenc are world-readable and, except the config folder,
# world-writable (sticky), so a run under Docker with any UID can fill what was not baked (a
# Singularity image stays read-only, and the app then skips the Taskonomy comparison unless
# --reference-affinities is given). One RUN, so that the chmod does not copy the baked
# weights into a second layer.
RUN set -eu; \
    mkdir -p "$BIDS_TASKENC_MODELS" "$XDG_CACHE_HOME/bids_taskenc/reference" "$TORCH_HOME" \
             "$TEMPLATEFLOW_HOME" "$NILEARN_DATA" /opt/bids_taskenc/pycortex/db; \
    if [ "${PREFETCH}" = "1" ]; then \
        bids_taskenc-models fetch ${PREFETCH_TASKS:+--tasks ${PREFETCH_TASKS}}; \
        bids_taskenc-models verify ${PREFETCH_TASKS:+--tasks ${PREFETCH_TASKS}}; \
        python -c "from bids_taskenc.group.reference import fetch_affinities; print('reference affinities:', fetch_affinities())"; \
    fi; \
    chmod -R a+rX /opt/bids_taskenc; \
    find /opt/bids_taskenc -path "$XDG_CONFIG_HOME" -prune -o -type d -exec chmod 1777 {} +; \
    useradd --system --uid 1000 --user-group --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin bidsapp

USER bidsapp
WORKDIR /tmp

ENTRYPOINT ["bids_taskenc"]
CMD ["--help"]
