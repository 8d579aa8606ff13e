#!/usr/bin/env bash
# GPU checks, run on a lent GPU machine through the device tool (see docs/benchmarks.md).
#   bash bench/gpu_check.sh train   # full CoNLL-2003, 3 epochs, both subword strategies x 2 lrs;
#                                    # the spec's Advanced example with fp16 (needs a GPU)
#   bash bench/gpu_check.sh bench [ARGS]  # bench/run.py quick mode in bf16 (tokclf vs padded fp32 baseline)
# The machine has no PyPI and no Hub: missing wheels, an fp16 copy of MiniLM (loaded as fp32) and
# CoNLL-2003 travel in .gpu/ (git-ignored), prepared as described in docs/benchmarks.md.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1
export TOKCLF_SHARED_DATA=$PWD/.gpu/data TOKCLF_BENCH_MODEL=$PWD/.gpu/minilm TOKCLF_MINILM_PATH=$PWD/.gpu/minilm
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
case "${1:-train}" in
  train)
    timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_train.py -k "advanced_example or fp16" 2>&1 | tail -5 | tee "$OUT/advanced.log"
    timeout 420 python3 bench/conll_strategies.py --epochs 3 --lrs 1e-4,3e-4 --out "$OUT/conll_strategies_gpu.json" 2>&1 \
      | grep -E '^\{"|test F1|Error|error' | tee "$OUT/strategies.log"
    ;;
  bench)
    # Extra arguments go to bench/run.py, e.g. --warmup-sentences 500 (leave CUDA start-up out).
    # --full: all of CoNLL-2003 (else the quick mode's 3,000 sentences).
    shift
    case " $* " in *" --full "*) mode=full; extra=() ;; *) mode=quick; extra=(--train-sentences 3000) ;; esac
    timeout 400 python3 bench/run.py "${extra[@]}" --out "$OUT/bench-$mode.json" "$@" 2>&1 \
      | grep -v "it/s\]" | tee "$OUT/bench_$mode.log" | tail -20
    ;;
esac
