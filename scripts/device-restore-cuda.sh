#!/usr/bin/env bash
# Face restoration on the lent machine's GPU (H200, CUDA 13, cuDNN 9): `--face-device cuda`
# through ONNX Runtime 1.31.1's CUDA provider (the onnxruntime-gpu wheel's libraries), against
# the same runtime on the CPU. Shows: the same bytes on every run, tile size, --threads and
# budget on the GPU; how far the GPU's faces are from the CPU's; restoration time per face with
# the published sizes of CodeFormer and GFPGAN v1.4 (random weights, made there by
# scripts/make-restorers.py --full with the machine's torch and onnx); peak RSS; the 15x case.
#
# Carry: bench/gigascale.xz, .gl/ (Vulkan loader), .whl-cuda/ (libonnxruntime.so.1.31.1.xz,
# libonnxruntime_providers_shared.so, the tail of libonnxruntime_providers_cuda.so's xz stream,
# codeformer-pip 0.0.4 and gfpgan 1.3.8). The head of that stream comes in an earlier call
# (the carried tree is limited to 64 MiB) and waits in /tmp/cudaparts/. The provider library
# is the wheel's with the cubins of GPUs other than sm_90 zeroed (see scripts/strip-fatbin.py):
# the H200 loads only its own, so what runs is the wheel's code. Writes $OUT/device-restore-cuda.txt.
set -euo pipefail
OUT=${OUT:-/tmp}
log="$OUT/device-restore-cuda.txt"
work=$(mktemp -d)
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:${LD_LIBRARY_PATH:-}
xz -dc bench/gigascale.xz > "$work/gigascale" && chmod +x "$work/gigascale"
mkdir -p "$work/capi"
cat /tmp/cudaparts/* .whl-cuda/cuda.xz.tail | xz -dc > "$work/capi/libonnxruntime_providers_cuda.so"
xz -dc .whl-cuda/libonnxruntime.so.1.31.1.xz > "$work/capi/libonnxruntime.so.1.31.1"
cp .whl-cuda/libonnxruntime_providers_shared.so "$work/capi/"
lib="$work/capi/libonnxruntime.so.1.31.1"
gs() { "$work/gigascale" "$@"; }
field() { grep '"event":"done"' "$work/events" | sed -E "s/.*\"$1\":([0-9.]+).*/\\1/"; }
# Samples that differ between two images, and the largest difference.
differ() {
  python3 -c "
import sys, numpy as np; from PIL import Image
a, b = (np.asarray(Image.open(p)).astype(int) for p in sys.argv[1:3])
d = abs(a - b); print(f'{(d > 0).sum()} of {d.size} samples differ, {(d > 1).sum()} by more than 1, largest {d.max()}')" "$1" "$2"
}
# One timed upscale: `timed LABEL OUT ARGS...` prints whole seconds, faces seconds, peak RSS.
timed() {
  local label=$1 out=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/t" "$work/gigascale" upscale "$work/in.jpg" "$out" --overwrite \
    --onnxruntime "$lib" --progress json "$@" 2> "$work/events" || { cat "$work/events"; return 1; }
  read -r secs kb < "$work/t"
  echo "$label: whole $secs s, detection+restoration $(field faces_s) s, restoration $(field faces_restore_s) s, peak RSS $((kb / 1024)) MB"
}
{
  echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c "import torch, onnx; print('torch', torch.__version__, 'onnx', onnx.__version__, '; ONNX Runtime 1.31.1 GPU build (library)')"
  echo "## tiny fixtures: the same bytes on the GPU for every run, tile, thread count, budget"
  cp fixtures/astronaut-group.jpg "$work/in.jpg"
  for m in gfpgan codeformer; do
    model=fixtures/restorers/$m-tiny.onnx
    timed "$m-tiny cpu" "$work/cpu.png" --scale 2 --faces "$model"
    timed "$m-tiny cuda" "$work/gpu1.png" --scale 2 --faces "$model" --face-device cuda
    timed "$m-tiny cuda again" "$work/gpu2.png" --scale 2 --faces "$model" --face-device cuda
    gs upscale "$work/in.jpg" "$work/gpu3.png" --scale 2 --faces "$model" --face-device cuda --onnxruntime "$lib" \
      --overwrite -q --tile 32 --threads 1 --max-memory 1500M
    gs upscale "$work/in.jpg" "$work/gpu4.png" --scale 2 --faces "$model" --face-device cuda --onnxruntime "$lib" \
      --overwrite -q --threads 16 --backend gpu
    gs upscale "$work/in.jpg" "$work/gpu5.png" --scale 2 --faces "$model" --face-device auto --onnxruntime "$lib" \
      --overwrite --progress json 2> "$work/events"
    echo "$m --face-device auto: $(grep -o '"device":"[^"]*"' "$work/events" | tail -1); summary: $(gs upscale \
      "$work/in.jpg" "$work/gpu6.png" --scale 2 --faces "$model" --face-device auto --onnxruntime "$lib" --overwrite 2>&1 \
      | grep -o '[0-9]* faces restored[^,]*')"
    for k in 2 3 4 5 6; do
      cmp -s "$work/gpu1.png" "$work/gpu$k.png" && echo "$m cuda run $k: same bytes" || echo "$m cuda run $k: DIFFERENT"
    done
    echo "$m cuda against cpu: $(differ "$work/cpu.png" "$work/gpu1.png")"
  done
  echo "## published sizes, random weights"
  python3 scripts/make-restorers.py --full "$work/models" --from .whl-cuda 2>/dev/null
  gs upscale fixtures/astronaut-group.jpg "$work/in.jpg" --width 3000 --quality 95 -q --overwrite
  python3 -c "
from PIL import Image; i = Image.open('$work/in.jpg'); m = Image.new('RGB', (2 * i.width, 2 * i.height))
for k in range(4): m.paste(i, ((k % 2) * i.width, (k // 2) * i.height))
m.save('$work/mosaic.jpg', quality=95)"
  echo "input: 3000 px wide, $(gs faces "$work/in.jpg" --json | grep -o '"score"' | wc -l) faces; mosaic of 4: $(gs faces "$work/mosaic.jpg" --json | grep -o '"score"' | wc -l) faces"
  for m in gfpgan codeformer; do
    model="$work/models/$m-full.onnx"
    for rep in 1 2; do
      timed "$m-full cuda, run $rep" "$work/g.png" --scale 2 --faces "$model" --face-device cuda
    done
    timed "$m-full cpu --face-threads 16" "$work/c.png" --scale 2 --faces "$model" --face-threads 16
    echo "$m-full cuda against cpu --face-threads 16: $(differ "$work/c.png" "$work/g.png")"
    cp "$work/in.jpg" "$work/one.jpg"; cp "$work/mosaic.jpg" "$work/in.jpg"
    timed "$m-full cuda, mosaic" "$work/g.tif" --scale 1 --faces "$model" --face-device cuda
    cp "$work/one.jpg" "$work/in.jpg"
    for t in 2 16; do
      timed "$m-full cuda, --threads $t --max-memory 2G" "$work/g2.png" --scale 2 --faces "$model" \
        --face-device cuda --threads "$t" --max-memory 2G || true
      cmp -s "$work/g.png" "$work/g2.png" && echo "  same bytes as run 1" || echo "  DIFFERENT from run 1"
    done
  done
  gs devices | head -3
  for rep in 1 2; do
    timed "15x, faces off, run $rep" "$work/x15.tif" --scale 15 --compression zstd
    timed "15x, gfpgan-full on cuda, run $rep" "$work/x15.tif" --scale 15 --compression zstd \
      --faces "$work/models/gfpgan-full.onnx" --face-device cuda
  done
} 2>&1 | tee "$log"
