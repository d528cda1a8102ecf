#!/usr/bin/env bash
# The GPU measurement, as one script for a lent CUDA machine with torch, transformers and accelerate but no
# package index: wheels for what is missing travel in .whl/ (datasets, dill, multiprocess; pyarrow if older).
#   1. train_throughput on GPT-2 124M, 20,000 bundled films tiled: the report's recipe (pad 128, batch 4, fp16,
#      eager) against ours (configs/full.yaml) and ours with one change undone
#   2. profile_step: which kernels a step of ours runs, and how much of the step the GPU is busy
#   3. `moviegpt train --config full` end to end on CUDA (bf16, compile), 124M from config, bundled films
#   4. time to quality, last: on an H100 it needed more than the 2 minutes it was given (it printed nothing)
# Results go to $OUT (default benchmarks/results/gpu). SMALL=1 runs the same script with a tiny model (a dry run).
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 MOVIEGPT_PROGRESS=0
if [ -d .whl ] && ! python3 -c "import datasets" 2>/dev/null; then
  whl=(.whl/*.whl)
  python3 -c "import pyarrow, sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)" || whl+=(.whl/opt/pyarrow-*.whl)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${whl[@]}" || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
model=(--set model.n_layer=12 --set model.n_head=12 --set model.n_embd=768 --set model.n_positions=1024)
rows=20000 window=262144 steps=30 peak=8192 full_steps=200
if [ "${SMALL:-0}" = 1 ]; then
  model=(--set model.n_layer=1 --set model.n_head=2 --set model.n_embd=64 --set model.n_positions=512)
  rows=3000 window=4096 steps=2 peak=512 full_steps=4
fi
quiet() { grep -v -E "^\{'|it/s\]|s/it\]|Tokenising"; }  # Trainer's log dicts and progress bars
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__)"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-240}" python3 benchmarks/train_throughput.py --recipes benchmarks/train_throughput_gpu.yaml \
  --name train_throughput_gpu --rounds 3 --window-tokens $window --min-steps $steps --peak-size $peak --skip-quality \
  --replica-rows $rows "${model[@]}" --out "$OUT" 2>&1 | quiet | tee "$OUT/throughput.log"
echo "throughput: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout "${PROFILE_TIMEOUT:-90}" python3 benchmarks/profile_step.py --recipes benchmarks/train_throughput_gpu.yaml \
  --recipe ours --steps 5 --top 25 --replica-rows $rows "${model[@]}" --out "$OUT" 2>&1 | quiet | tee "$OUT/profile.log"
echo "profile: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
timeout "${FULL_TIMEOUT:-120}" python3 -m moviegpt.cli train --config full --set runs_dir=/tmp/runs \
  --set model.name=scratch --set model.tokenizer=gpt2-bundled "${model[@]}" --set data.source=bundled \
  --set train.max_steps=$full_steps --set train.eval_steps=100 --set train.save_steps=200 --set train.logging_steps=50 \
  --set data.max_eval_rows=500 2>&1 | quiet | tee "$OUT/full.log"
echo "full profile: $(( $(date +%s) - t0 )) s"
run=$(ls -d /tmp/runs/full-* 2>/dev/null | tail -1)
[ -n "$run" ] && cp "$run/summary.json" "$OUT/full_summary.json" && cp "$run/config.yaml" "$OUT/full_config.yaml" \
  && cp "$run/metrics.jsonl" "$OUT/full_metrics.jsonl"
t0=$(date +%s)
timeout "${QUALITY_TIMEOUT:-240}" python3 benchmarks/train_throughput.py --recipes benchmarks/train_throughput_gpu.yaml \
  --name train_throughput_gpu_quality --skip-throughput "${model[@]}" --out "$OUT" 2>&1 | quiet | tee "$OUT/quality.log"
echo "time to quality: $(( $(date +%s) - t0 )) s"
ls -la "$OUT"
