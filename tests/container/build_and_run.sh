#!/usr/bin/env bash
# Full container proof: build the image with podman (chroot isolation, no Docker engine),
# then inside it run `bids_taskenc --version` and a participant + group run on the
# synthetic dataset: as the image's user, as an arbitrary uid, and as an arbitrary uid on
# a read-only root file system with only /tmp and the outputs writable (what Singularity
# and `docker run --read-only --tmpfs /tmp` give). Prints the image size. Slow (minutes;
# most of it is pip downloading the dependencies), needs root, podman/buildah, unshare
# and the registries.
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
#   NO_CACHE=1       build every layer afresh (podman build --no-cache), to time a clean build
#   PRUNE=1          afterwards remove dangling images (old builds) to free disk space
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
  [ "${NO_CACHE:-0}" = 1 ] && build_args+=(--no-cache)
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
brun sh -c 'if command -v gcc cc c++ g++ clang; then echo "COMPILER IN THE IMAGE" >&2; exit 1; fi
  if dpkg-query -W -f "\${db:Status-Abbrev} \${Package}\n" build-essential gcc g++ cpp python3-dev 2>/dev/null | grep "^ii"; then
    echo "COMPILER PACKAGE IN THE IMAGE" >&2; exit 1; fi
  echo "no compiler in the image"'

log "pycortex configuration (baked; read where pycortex looks for it)"
brun python - <<'PY'
import configparser, importlib.util, os
cfg = os.path.join(os.environ["XDG_CONFIG_HOME"], "pycortex", "options.cfg")
c = configparser.ConfigParser()
assert c.read(cfg) == [cfg], f"cannot read {cfg}"
print("options.cfg:", cfg, "writable:", os.access(cfg, os.W_OK))
print("  filestore:", c["basic"]["filestore"], "exists:", os.path.isdir(c["basic"]["filestore"]))
print("  cache:", c["basic"]["cache"])
if importlib.util.find_spec("cortex") is None:
    print("pycortex not installed (no flatmaps extra in this build)")
else:
    import cortex
    print("pycortex", getattr(cortex, "__version__", "?"), "reads", cortex.options.usercfg,
          "filestore", cortex.database.default_filestore)
    assert cortex.options.usercfg == cfg
PY

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

log "any uid: participant + group as uid 12345 (no passwd entry), outputs in a bind mount"
host_out=$(mktemp -d); chmod 777 "$host_out"
buildah run --isolation chroot --user 12345:12345 -v "$host_out:/out" "$c" -- sh -ec '
  id
  quiet() { "$@" > /tmp/log-12345 2>&1 || { cat /tmp/log-12345; exit 1; }; tail -n 2 /tmp/log-12345; }
  quiet bids_taskenc /tmp/ds /out participant --features-dir /tmp/ds/derivatives/features \
      -w /tmp/work-12345 --offline
  quiet bids_taskenc /tmp/ds /out group -w /tmp/work-12345 --offline
'
log "outputs on the host: $(find "$host_out" -type f | wc -l) files, owner uid $(stat -c %u "$host_out/dataset_description.json")"
rm -rf "$host_out"

# 4. read-only root, arbitrary uid --------------------------------------------------------
# podman run --read-only cannot start here (rlimits), so the container's root file system
# is bind-mounted read-only in a private mount namespace, with an empty tmpfs on /tmp, the
# dataset read-only and the outputs writable, and entered with chroot as uid 55555 with
# only the image's environment: what Singularity does (plus the host's /tmp and $HOME).
if command -v unshare >/dev/null && command -v chroot >/dev/null; then
  log "read-only root file system as uid 55555: participant + group"
  rootfs=$(buildah mount "$c")
  ro=$(mktemp -d); ro_out=$(mktemp -d); chmod 777 "$ro_out"
  podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | grep . > "$ro.env"
  unshare --mount --propagation private bash -ec '
    rootfs=$1 ro=$2 out=$3 envfile=$4
    mapfile -t image_env < "$envfile"
    mount --bind "$rootfs" "$ro"
    mount -o remount,bind,ro "$ro"
    mount -t tmpfs -o mode=1777 tmpfs "$ro/tmp"
    mount --rbind /dev "$ro/dev"
    mount --bind /proc "$ro/proc"
    mkdir "$ro/tmp/data" "$ro/tmp/out"
    mount --bind -o ro "$rootfs/tmp/ds" "$ro/tmp/data"
    mount --bind "$out" "$ro/tmp/out"
    if touch "$ro/opt/bids_taskenc/probe" 2>/dev/null; then echo "root is writable" >&2; exit 1; fi
    cat > "$ro/tmp/check_pycortex.py" <<PY
import importlib.util, os
if importlib.util.find_spec("cortex") is None:
    print("pycortex not installed")
else:
    import cortex  # would fail if it tried to write its options.cfg
    cache = cortex.options.config.get("basic", "cache")
    os.makedirs(cache, exist_ok=True)
    print("pycortex imports on the read-only root; cache", cache, "writable:", os.access(cache, os.W_OK))
PY
    env -i "${image_env[@]}" chroot --userspec=55555:55555 "$ro" sh -ec "
      cd /tmp; id; echo \"HOME=\$HOME, / read-only, /tmp writable\"
      quiet() { \"\$@\" > /tmp/log 2>&1 || { cat /tmp/log; exit 1; }; tail -n 2 /tmp/log; }
      quiet bids_taskenc /tmp/data /tmp/out participant --features-dir /tmp/data/derivatives/features \
          -w /tmp/work --offline
      quiet bids_taskenc /tmp/data /tmp/out group -w /tmp/work --offline
      printf %s \"matplotlib cache: \"
      python -c \"import matplotlib, matplotlib.pyplot as plt; plt.figure(); print(matplotlib.get_cachedir())\"
      python /tmp/check_pycortex.py
    "
  ' bash "$rootfs" "$ro" "$ro_out" "$ro.env"
  log "outputs of the read-only run: $(find "$ro_out" -type f | wc -l) files, owner uid $(stat -c %u "$ro_out/dataset_description.json")"
  buildah umount "$c" >/dev/null
  rm -rf "$ro_out" "$ro.env"; rmdir "$ro"
else
  log "SKIPPED read-only run: unshare/chroot missing"
fi

log "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB (%s bytes)", $1/1e6, $1}')"
podman images "$IMAGE"
if [ "${PRUNE:-0}" = 1 ]; then
  log "removing dangling images"; podman image prune -f >/dev/null
fi
log "OK"
