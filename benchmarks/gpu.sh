#!/usr/bin/env bash
# The GPU measurement, as one script for a lent CUDA machine with torch, transformers and accelerate but no
# package index: wheels for what is missing travel in .whl/ (datasets, dill, multiprocess; pyarrow if older).
#   1. train_throughput on GPT-2 124M: the report's recipe (pad 128, batch 4, fp16, eager) against ours
#   2. `moviegpt train --config full` end to end on CUDA (bf16, compile), 124M from config, bundled films
# Results go to $OUT (default benchmarks/results/gpu): train_throughput_gpu.json, the full run's summary and log.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if [ -d .whl ]; then
  whl=(.whl/*.whl)
  python3 -c "import pyarrow, sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)" || whl+=(.whl/opt/pyarrow-*.whl)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${whl[@]}" || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,clocks.sm,driver_version --format=csv,noheader
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__)"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-330}" python3 benchmarks/train_throughput.py --recipes benchmarks/train_throughput_gpu.yaml \
  --name train_throughput_gpu --rounds 3 --window-tokens 262144 --min-steps 30 --peak-size 8192 --out "$OUT" \
  2>&1 | grep -v -E "it/s\]|s/it\]" | tee "$OUT/throughput.log"
echo "throughput + quality: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout "${FULL_TIMEOUT:-200}" python3 -m moviegpt.cli train --config full --set runs_dir=/tmp/runs \
  --set model.name=scratch --set model.tokenizer=gpt2-bundled --set model.n_layer=12 --set model.n_head=12 \
  --set model.n_embd=768 --set model.n_positions=1024 --set data.source=bundled \
  --set train.max_steps=300 --set train.eval_steps=100 --set train.save_steps=200 --set train.logging_steps=50 \
  2>&1 | grep -v -E "it/s\]|s/it\]" | tee "$OUT/full.log"
echo "full profile: $(( $(date +%s) - t0 )) s"
run=$(ls -d /tmp/runs/full-* 2>/dev/null | head -1)
[ -n "$run" ] && cp "$run/summary.json" "$OUT/full_summary.json" && cp "$run/config.yaml" "$OUT/full_config.yaml" \
  && cp "$run/metrics.jsonl" "$OUT/full_metrics.jsonl"
ls -la "$OUT"
