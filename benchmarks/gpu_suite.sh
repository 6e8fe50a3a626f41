#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md in one run that fits a 10-minute slot
# on one H100/H200: the device augmentation's cost (benchmarks/device_augment_cost.py),
# resnet50 at batch 256 and 64, fcn_resnet18 at 320x480 and
# the unpadded U-Net at 572, float32 and bfloat16, beside torch (eager,
# channels_last; torch.compile at batch 64) and Keras (JAX backend, XLA).
#
#   OUT=gpu_out bash benchmarks/gpu_suite.sh [seconds budget, default 520]
#   ONLY='unet|fcn' ...   (only the cases whose label matches this regex)
#   EXTRA="--device cpu --batch 2 --size 64,64 --reps 1 --steps 1" AUG_EXTRA="--device cpu --small" ...
#                  (a quick dry run of the script on a CPU host)
#
# Cases run most important first and stop starting new ones once the budget
# is spent; every finished case is appended to $OUT/results.jsonl and its
# table to $OUT/tables.md at once, so a cut run keeps what it measured.
# Keras and its two small dependencies may come as wheels in .whl/ (GPU images
# rarely carry them); everything else is what the host's python3 has.
set -u
OUT=${OUT:-gpu_out}; BUDGET=${1:-520}; mkdir -p "$OUT"; START=$(date +%s)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv
  python3 -c "import jax, flax, torch; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'torch', torch.__version__)"
} 2>&1 | tee "$OUT/tables.md"

case_() {  # case_ LABEL ARGS...: one driver invocation, skipped once the budget is spent
  local label=$1; shift
  if [[ -n "${ONLY:-}" && ! "$label" =~ $ONLY ]]; then return; fi
  if (( $(date +%s) - START > BUDGET )); then echo "skipped (budget): $label" | tee -a "$OUT/tables.md"; return; fi
  echo -e "\n### $label" >> "$OUT/tables.md"
  python3 benchmarks/models_throughput.py --device gpu --reps 5 --steps 4 --warmup 2 --timeout 200 --json /tmp/case.json "$@" ${EXTRA:-} \
    2>&1 | grep -v "^ " | tee -a "$OUT/tables.md"
  python3 -c "import json,sys; d=json.load(open('/tmp/case.json')); [print(json.dumps({'case': sys.argv[1], **r})) for r in d['results']]" \
    "$label" >> "$OUT/results.jsonl" 2>/dev/null
}
# data.augment_on='device': augmentation + uint8 transfer against the step (issue 23), first: the
# step figures below were measured before; this one never was.
if [[ -z "${ONLY:-}" || "device_augment" =~ $ONLY ]]; then
  echo -e "\n### device augmentation and uint8 transfer vs the step" >> "$OUT/tables.md"
  python3 benchmarks/device_augment_cost.py --device gpu --json "$OUT/device_augment.json" ${AUG_EXTRA:-} \
    2>&1 | grep -v "^ " | tee -a "$OUT/tables.md"
fi
R50="--models resnet50 --size 224,224"
case_ "resnet50 b256 bf16" $R50 --batch 256 --dtype bfloat16 --impls fluxseg,torchvision_cl
case_ "resnet50 b64 bf16"  $R50 --batch 64 --dtype bfloat16 --impls fluxseg,torchvision_cl,torchvision_cl_compile,keras_app
case_ "resnet50 b256 f32"  $R50 --batch 256 --dtype float32 --impls fluxseg,torchvision_cl
case_ "resnet50 b64 f32"   $R50 --batch 64 --dtype float32 --impls fluxseg,torchvision_cl,keras_app
case_ "fcn_resnet18 320x480 b16 bf16" --models fcn_resnet18 --size 320,480 --batch 16 --dtype bfloat16
case_ "unet 572 b4 bf16"   --models unet --size 572,572 --batch 4 --dtype bfloat16
case_ "fcn_resnet18 320x480 b16 f32" --models fcn_resnet18 --size 320,480 --batch 16 --dtype float32
case_ "unet 572 b4 f32"    --models unet --size 572,572 --batch 4 --dtype float32
echo "total $(( $(date +%s) - START )) s" | tee -a "$OUT/tables.md"
