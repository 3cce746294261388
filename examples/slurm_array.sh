#!/usr/bin/env bash
# bids_taskenc on a SLURM cluster with Singularity/Apptainer: one participant per array
# task on a GPU node, then one group job that starts when every array task succeeded.
#
#   bash examples/slurm_array.sh /path/to/bids /path/to/derivatives/bids_taskenc
#
# Participants come from participants.tsv (else `ls sub-*`). All tasks share one
# --work-dir on a shared file system, so the feature matrices (one per feature space, the
# same for every participant who saw the same images) are computed once and reused.
#
# Resources are a STARTING POINT, not measured limits: 16 GB RAM, 1 h, 1 GPU per
# participant (the paper's 21 Taskonomy spaces on BOLD5000-sized data); the group job is
# CPU-only and small. Adjust to your data (use `sacct -j JOBID --format=MaxRSS,Elapsed`).
set -euo pipefail

BIDS_DIR=$(realpath "${1:?usage: $0 BIDS_DIR OUTPUT_DIR}")
OUT_DIR=$(realpath -m "${2:?usage: $0 BIDS_DIR OUTPUT_DIR}")
SIF=${SIF:-$PWD/bids_taskenc.sif}                   # singularity build bids_taskenc.sif singularity.def
WORK_DIR=${WORK_DIR:-$OUT_DIR/../bids_taskenc_work}  # shared by all tasks (not node-local /tmp)
PARTITION=${PARTITION:-gpu}
EXTRA_ARGS=${EXTRA_ARGS:-}                           # e.g. "--features-dir /data/derivatives/features"
mkdir -p "$OUT_DIR" "$WORK_DIR" "$OUT_DIR/logs"
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

# Same binds in every job: dataset read-only, outputs and the shared work dir writable.
BINDS="-B $BIDS_DIR:/data:ro -B $OUT_DIR:/out -B $WORK_DIR:/work"

JOBID=$(sbatch --parsable \
  --job-name=taskenc-part --partition="$PARTITION" --gres=gpu:1 \
  --cpus-per-task=4 --mem=16G --time=01:00:00 \
  --array=1-"$N" --output="$OUT_DIR/logs/participant-%A_%a.log" \
  --wrap="set -eu
    label=\$(sed -n \"\${SLURM_ARRAY_TASK_ID}p\" '$OUT_DIR/logs/subjects.txt')
    singularity run --nv --cleanenv $BINDS '$SIF' /data /out participant \
      --participant-label \"\$label\" -w /work $EXTRA_ARGS")
echo "participant array: job $JOBID"

GROUP=$(sbatch --parsable --dependency=afterok:"$JOBID" \
  --job-name=taskenc-group --cpus-per-task=4 --mem=8G --time=00:30:00 \
  --output="$OUT_DIR/logs/group-%j.log" \
  --wrap="singularity run --cleanenv $BINDS '$SIF' /data /out group -w /work")
echo "group: job $GROUP (after $JOBID succeeds)"
