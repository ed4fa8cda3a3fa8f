#!/usr/bin/env bash
# The GPU paths of avssl on one CUDA machine, in one go (results in docs/benchmarks.md, "GPU"):
#
#   bash benchmarks/gpu_check.sh OUTDIR          # PYTHON=... to use another interpreter
#
# 1. the CUDA-only tests (augmentations on the GPU give the CPU's results)
# 2. one XKD ViT-B training step in bf16 at the released batch (benchmarks/train_step.py --sizes base)
# 3. the demo pretrained on the GPU in bf16 (avssl demo --accelerator gpu --precision bf16-mixed)
# 4. end-to-end pretraining speed of the full-size xID config (R(2+1)D-18 + Conv2D-10, 224², batch 32)
#    on one GPU in fp32 and bf16, real decoding (benchmarks/pretrain_throughput.py)
# 5. the whole test suite with CUDA visible (Lightning's "auto" accelerator then picks the GPU)
# Each step's log goes to OUTDIR/<step>.log; a failing step does not stop the next.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
PY=${PYTHON:-python3}
WORKERS=${WORKERS:-12}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
status=0
step() {  # step NAME COMMAND...: run, log, remember a failure
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" >"$OUT/$name.log" 2>&1 || { echo "   FAILED (see $OUT/$name.log)"; status=1; }
    tail -n 14 "$OUT/$name.log"
    echo "   ($((SECONDS - t0)) s)"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torchvision, lightning, av; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'lightning', lightning.__version__, 'av', av.__version__)"

step cuda_tests $PY -m pytest -q -p no:cacheprovider tests/test_augment.py -k "gpu or cuda"
step train_step_base $PY benchmarks/train_step.py --sizes base --variants xkd xkd_mats --steps 20
step demo_gpu_bf16 $PY -m avssl.cli demo --accelerator gpu --precision bf16-mixed --workers "$WORKERS" \
    --out "${DEMO_OUT:-$OUT/demo}" --no-progress
step throughput_xid_full $PY benchmarks/pretrain_throughput.py --config configs/pretrain/avid/kinetics400.yaml \
    --manifest "${DEMO_OUT:-$OUT/demo}/prepared/train.csv" --precision 32 bf16-mixed --steps 60 --warmup 10 --workers "$WORKERS"
step test_suite $PY -m pytest -q -p no:cacheprovider -n 8 --timeout=600 --continue-on-collection-errors tests
exit $status
