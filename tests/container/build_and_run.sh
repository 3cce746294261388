#!/usr/bin/env bash
# Full container proof: build the image with podman (chroot isolation, no Docker engine),
# then inside it run `bids_taskenc --version` and a participant + group run on the
# synthetic dataset, and print the image size. Slow (minutes; most of it is pip
# downloading the dependencies), needs root, podman/buildah and the registries.
#
#   bash tests/container/build_and_run.sh            # CPU torch wheel from $TORCH_WHEEL_SRC
#   TORCH_WHEEL_SRC= bash tests/container/build_and_run.sh   # torch from PyPI (CUDA, GBs)
#
# Environment:
#   IMAGE            tag to build (default localhost/bids_taskenc:dev)
#   TORCH_WHEEL_SRC  folder with a local torch wheel copied into tests/container/wheels/
#                    (default /opt/wheels, this machine's CPU wheel); empty: none
#   TORCH_SPEC       passed as --build-arg (default torch==2.13.0+cpu with a local wheel)
#   BASE_SCRIPT      makes the local debian:bookworm-slim stand-in
#                    (default ../shared/container/make-base-image.sh next to the checkout)
#   SKIP_BUILD=1     reuse an existing $IMAGE
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
IMAGE=${IMAGE:-localhost/bids_taskenc:dev}
TORCH_WHEEL_SRC=${TORCH_WHEEL_SRC-/opt/wheels}
BASE_SCRIPT=${BASE_SCRIPT:-$root/../shared/container/make-base-image.sh}
wheels=$root/tests/container/wheels          # ignored by git, kept by .dockerignore
t0=$(date +%s)
log() { printf '[%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - t0 ))" "$*"; }

# 1. tools + base image ------------------------------------------------------------
if [ -f "$BASE_SCRIPT" ]; then
  log "base image: $BASE_SCRIPT"
  bash "$BASE_SCRIPT"
fi
command -v podman >/dev/null && command -v buildah >/dev/null || {
  echo "podman/buildah missing: apt-get install -y podman buildah" >&2; exit 2; }

# 2. build ---------------------------------------------------------------------------
build_args=()
if [ -n "$TORCH_WHEEL_SRC" ]; then
  shopt -s nullglob
  src=("$TORCH_WHEEL_SRC"/torch-*.whl)
  shopt -u nullglob
  [ ${#src[@]} -gt 0 ] || { echo "no torch wheel in $TORCH_WHEEL_SRC" >&2; exit 2; }
  for w in "${src[@]}"; do
    [ -e "$wheels/$(basename "$w")" ] || ln "$w" "$wheels/" 2>/dev/null || cp "$w" "$wheels/"
  done
  ver=$(basename "${src[0]}" | cut -d- -f2)                  # e.g. 2.13.0+cpu
  build_args+=(--build-arg "TORCH_SPEC=${TORCH_SPEC:-torch==$ver}")
elif [ -n "${TORCH_SPEC:-}" ]; then
  build_args+=(--build-arg "TORCH_SPEC=$TORCH_SPEC")
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building $IMAGE ${build_args[*]}"
  tb=$(date +%s)
  # The registry proxy's CA goes where update-ca-certificates (run when the image
  # installs ca-certificates) picks it up, so apt and pip inside the build trust it.
  ca=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && \
    ca=(-v /etc/ssl/certs/ca-certificates.crt:/usr/local/share/ca-certificates/build-host.crt:ro)
  podman build --isolation chroot --pull=never "${ca[@]}" "${build_args[@]}" \
    -f "$root/Dockerfile" -t "$IMAGE" "$root"
  log "build took $(( $(date +%s) - tb )) s"
fi

# 3. run inside the image --------------------------------------------------------------
# `buildah run` does not apply ENTRYPOINT: name the command. podman run cannot set
# rlimits on these machines, so buildah's chroot runner is used.
c=$(buildah from --pull=never "$IMAGE")
trap 'buildah rm "$c" >/dev/null 2>&1 || true' EXIT
brun() { buildah run --isolation chroot --user "$(buildah inspect --format '{{.OCIv1.Config.User}}' "$c")" "$c" -- "$@"; }

log "entrypoint: $(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")"
log "user: $(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
brun bids_taskenc --version
brun sh -c 'id; echo HOME=$HOME BIDS_TASKENC_CONTAINER=$BIDS_TASKENC_CONTAINER BIDS_TASKENC_MODELS=$BIDS_TASKENC_MODELS XDG_CACHE_HOME=$XDG_CACHE_HOME MPLCONFIGDIR=$MPLCONFIGDIR'
brun python -c 'import torch; print("torch", torch.__version__, "cuda build:", torch.version.cuda, "cuda available:", torch.cuda.is_available())'
brun sh -c 'command -v gcc cc g++ || echo "no compiler in the image"'

log "synthetic dataset + participant + group (inside the image)"
brun sh -ec '
  rm -rf /tmp/ds /tmp/out /tmp/work
  bids_taskenc-synthetic /tmp/ds --participants 1
  bids_taskenc /tmp/ds /tmp/out participant --participant-label CSI1 \
      --features-dir /tmp/ds/derivatives/features -w /tmp/work --offline
  bids_taskenc /tmp/ds /tmp/out group -w /tmp/work --offline
  python -c "import json; print(\"GeneratedBy:\", json.load(open(\"/tmp/out/dataset_description.json\"))[\"GeneratedBy\"])"
  find /tmp/out -type f | wc -l | sed "s/^/output files: /"
'

log "any uid: participant + group as uid 4242 (no passwd entry), outputs in a bind mount"
host_out=$(mktemp -d); chmod 777 "$host_out"
buildah run --isolation chroot --user 4242:4242 -v "$host_out:/out" "$c" -- sh -ec '
  id
  bids_taskenc /tmp/ds /out participant --features-dir /tmp/ds/derivatives/features \
      -w /tmp/work-4242 --offline 2>&1 | tail -n 2
  bids_taskenc /tmp/ds /out group -w /tmp/work-4242 --offline 2>&1 | tail -n 1
'
log "outputs on the host: $(find "$host_out" -type f | wc -l) files, owner uid $(stat -c %u "$host_out/dataset_description.json")"
rm -rf "$host_out"

log "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB (%s bytes)", $1/1e6, $1}')"
podman images "$IMAGE"
log "OK"
