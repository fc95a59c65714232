#!/usr/bin/env bash
# Full-settings SMD training on a GPU machine (see bench/smd_cache.py): batch 64 on the GPU and batch 5 on
# the CPU cores (1 thread per machine) or, with SMALL_DEV=cuda, on the GPU too; all machines in parallel.
# Usage: OUT=<folder> bench/smd_gpu_train.sh [DEADLINE_S] [MAX_EPOCHS] [extra args for both trainings]
set -o pipefail
OUT=${OUT:?set OUT}; DEADLINE=${1:-300}; EPOCHS=${2:-200}; shift 2 || shift $#
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
GPU_DEV=${GPU_DEV:-cuda}
SMALL_DEV=${SMALL_DEV:-cpu}  # device of the batch-5 run (cuda: both on the GPU)
CACHE=$(mktemp -d)
{
  nvidia-smi -L 2>/dev/null; nproc
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  common=(--data .smdpack --hidden 200 --train-step 10 --max-epochs "$EPOCHS" --patience 8 --deadline "$DEADLINE" --jobs 11 "$@")
  $PY -m bench.smd_cache train "${common[@]}" --batch-sizes 64 --device "$GPU_DEV" --cache "$CACHE/b64" &
  g=$!
  $PY -m bench.smd_cache train "${common[@]}" --batch-sizes 5 --device "$SMALL_DEV" --cache "$CACHE/b5"
  c=$?
  wait $g; g=$?
  echo "exit: gpu=$g cpu=$c"
} 2>&1 | grep -v 'it/s\]$' | tee "$OUT/log"
for b in b64 b5; do
  [ -d "$CACHE/$b" ] && (cd "$CACHE/$b" && tar cf - ./*.train.npz | split -b 15m - "$OUT/$b.tar.")
done
ls -la "$OUT"
