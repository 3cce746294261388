#!/usr/bin/env bash
# bids_taskenc on a SLURM cluster with Singularity/Apptainer: one participant per array
# task on a GPU node, all sharing one work dir, then one group job that starts when every
# participant succeeded.
#
#   bash examples/slurm_array.sh /path/to/bids /path/to/derivatives/bids_taskenc
#
# Participants come from participants.tsv (else `ls sub-*`). The script submits itself:
# on the compute node it is called again with `--job participant|group ...`.
#
# Settings (environment variables, defaults in brackets):
#   SIF          the image [./bids_taskenc.sif]  (singularity build bids_taskenc.sif singularity.def)
#   WORK_DIR     shared work dir on a shared file system, never node-local /tmp
#                [OUTPUT_DIR/../bids_taskenc_work]
#   PARTITION    GPU partition [gpu];  GROUP_PARTITION  partition of the group job [default partition]
#   GRES         GPU request per participant [gpu:1]
#   PART_MEM, PART_TIME, PART_CPUS      per participant [32G, 02:00:00, 8]
#   GROUP_MEM, GROUP_TIME, GROUP_CPUS   group job [8G, 00:30:00, 4]
#   WARM_CACHE   1: the first participant runs alone and fills the shared feature cache and the
#                dataset index (WORK_DIR/bids_db), the others start after it (whatever its
#                outcome) and compute no features nor index;
#                0: all start at once, each computes the features it does not find [1]
#   EXTRA_ARGS   more bids_taskenc options, e.g. "--features-dir /data/derivatives/features"
#
# Where the resources come from (the benchmarks' documented shapes and goals; rescale for
# your data, and check a first run with `sacct -j JOBID --format=JobID,MaxRSS,Elapsed`):
#   Assumed data per participant (BOLD5000, CSI1-3): 4,916 distinct images in 5,254 trials,
#   ~142 runs of 194 volumes (106 x 106 x 69 voxels at 2 mm), V analysed voxels; the ridge
#   benchmark's shape W1 takes V = 50,000.
#   GPU time. benchmarks/featurize.py: 21 Taskonomy encoders x 4,916 images in <= 10 s on
#   an H100 including JPEG decoding (goal; fp32 without bf16 ~4,500 images/s per encoder,
#   i.e. ~25 s); with the shared work dir this happens once, not once per participant.
#   benchmarks/ridge.py: W1 (n 4,916, p 2,048, V 50,000, 17 alphas, 7 folds) in <= 0.35 s
#   per feature space on an H100 (goal; himalaya 3.47 s), so 21 spaces take ~7 s (~75 s at
#   himalaya's speed); GPU memory: the engine batches voxels into 80 % of the free GPU
#   memory, and W1's responses are 1 GB, so any GPU with >= 16 GB does.
#   Memory. Trial responses 5,254 x V float32 (1.1 GB at V = 50,000), their repeat
#   average (float64 while summing, 2 GB), features 21 x 4,916 x 2,048 float32 (0.85 GB),
#   one run's BOLD at a time (106 x 106 x 69 x 194 float32, 0.6 GB): ~6 GB at W1. A
#   whole-brain mask at 2 mm (~200,000 voxels) multiplies the response part by 4: ~20 GB.
#   PART_MEM=32G covers both with headroom.
#   Time. Compute is under 2 minutes; reading ~142 gzipped BOLD runs and writing ~21 x 8
#   maps (not benchmarked; seconds each) dominate: ~15-20 min expected. PART_TIME=2h
#   leaves room for a slow shared file system and --n-permutations.
#   Group job: CPU only; it reads the participants' r maps (21 x V floats each), small.
set -euo pipefail

# ------------------------------------------------------------------ inside a job
if [ "${1:-}" = "--job" ]; then
  stage=$2 BIDS_DIR=$3 OUT_DIR=$4 WORK_DIR=$5 SIF=$6
  # A job-private /tmp: Singularity shares the host's /tmp between users and jobs.
  jobtmp=$(mktemp -d "${TMPDIR:-/tmp}/bids_taskenc.XXXXXX")
  trap 'rm -rf "$jobtmp"' EXIT
  binds=(-B "$BIDS_DIR:/data:ro" -B "$OUT_DIR:/out" -B "$WORK_DIR:/work" -B "$jobtmp:/tmp")
  if [ "$stage" = participant ]; then
    label=$(sed -n "${SLURM_ARRAY_TASK_ID}p" "$OUT_DIR/logs/subjects.txt")
    echo "participant $label (array task $SLURM_ARRAY_TASK_ID) on $(hostname)"
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of options
    # --bids-database-dir: one pybids index of the dataset in the shared work dir, written by the first
    # job (atomically) and read by the others instead of each indexing the dataset (docs/clusters.md)
    singularity run --nv --cleanenv "${binds[@]}" "$SIF" /data /out participant \
      --participant-label "$label" -w /work --bids-database-dir /work/bids_db ${EXTRA_ARGS:-}
  else
    # shellcheck disable=SC2086
    singularity run --cleanenv "${binds[@]}" "$SIF" /data /out group -w /work ${EXTRA_ARGS:-}
  fi
  exit
fi

# ------------------------------------------------------------------ submission
BIDS_DIR=$(realpath "${1:?usage: $0 BIDS_DIR OUTPUT_DIR}")
OUT_DIR=$(realpath -m "${2:?usage: $0 BIDS_DIR OUTPUT_DIR}")
SIF=$(realpath "${SIF:-$PWD/bids_taskenc.sif}")
WORK_DIR=${WORK_DIR:-$OUT_DIR/../bids_taskenc_work}
PARTITION=${PARTITION:-gpu}
GRES=${GRES:-gpu:1}
PART_MEM=${PART_MEM:-32G} PART_TIME=${PART_TIME:-02:00:00} PART_CPUS=${PART_CPUS:-8}
GROUP_MEM=${GROUP_MEM:-8G} GROUP_TIME=${GROUP_TIME:-00:30:00} GROUP_CPUS=${GROUP_CPUS:-4}
WARM_CACHE=${WARM_CACHE:-1}
mkdir -p "$OUT_DIR/logs" "$WORK_DIR"
WORK_DIR=$(realpath "$WORK_DIR")

# Participant labels, without "sub-".
if [ -f "$BIDS_DIR/participants.tsv" ]; then
  mapfile -t SUBJECTS < <(awk -F'\t' 'NR > 1 && $1 != "" { sub(/^sub-/, "", $1); print $1 }' \
                            "$BIDS_DIR/participants.tsv")
else
  mapfile -t SUBJECTS < <(cd "$BIDS_DIR" && ls -d sub-* | sed 's/^sub-//')
fi
N=${#SUBJECTS[@]}
[ "$N" -gt 0 ] || { echo "no participants in $BIDS_DIR" >&2; exit 1; }
printf '%s\n' "${SUBJECTS[@]}" > "$OUT_DIR/logs/subjects.txt"
echo "$N participants: ${SUBJECTS[*]}"

job_args=("$BIDS_DIR" "$OUT_DIR" "$WORK_DIR" "$SIF")
part=(sbatch --parsable --job-name=taskenc-part --partition="$PARTITION" --gres="$GRES"
      --cpus-per-task="$PART_CPUS" --mem="$PART_MEM" --time="$PART_TIME"
      --output="$OUT_DIR/logs/participant-%A_%a.log")

if [ "$WARM_CACHE" = 1 ] && [ "$N" -gt 1 ]; then
  # The first participant computes every image's features into the shared work dir; the
  # rest start when it has ended (afterany: they also run, computing features themselves,
  # should it fail) and find the features there.
  FIRST=$("${part[@]}" --array=1 "$0" --job participant "${job_args[@]}")
  REST=$("${part[@]}" --array=2-"$N" --dependency=afterany:"$FIRST" "$0" --job participant "${job_args[@]}")
  PARTICIPANT_JOBS="$FIRST:$REST"
  echo "participant 1: job $FIRST; participants 2-$N: array job $REST (after $FIRST)"
else
  PARTICIPANT_JOBS=$("${part[@]}" --array=1-"$N" "$0" --job participant "${job_args[@]}")
  echo "participants 1-$N: array job $PARTICIPANT_JOBS"
fi

# afterok on an array job: every task of it must have succeeded.
GROUP=$(sbatch --parsable --dependency=afterok:"$PARTICIPANT_JOBS" \
  --job-name=taskenc-group ${GROUP_PARTITION:+--partition="$GROUP_PARTITION"} \
  --cpus-per-task="$GROUP_CPUS" --mem="$GROUP_MEM" --time="$GROUP_TIME" \
  --output="$OUT_DIR/logs/group-%j.log" \
  "$0" --job group "${job_args[@]}")
echo "group: job $GROUP (after every participant succeeded)"
