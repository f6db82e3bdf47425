#!/usr/bin/env bash
# device-models.sh — on the lent GPU machine (../shared/device-gpu.md): the built-in models at
# every scale with the default --gpu-memory, on --backend gpu and auto (each must run: the
# network's tiles are cut to the adapter's buffer limits), the 15x anime job's time, and GPU ==
# CPU on a crop. Carry: .gl (Vulkan loader), bench/ (gigascale stripped, photo-2000x3000.jpg).
# Results: $OUT (or ./device-out).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
bin=${BIN:-bench/gigascale}; in=bench/photo-2000x3000.jpg; reps=${REPS:-3}
work=/tmp/gs; mkdir -p "$work"
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; } | tee "$out/machine.txt"
$bin devices | tee "$out/devices.txt"
run() {  # label, args...
  local label=$1; shift
  /usr/bin/time -f "rss_kb=%M" -o "$work/rss" timeout 300 $bin upscale "$in" "$@" --overwrite --progress json 2>"$work/err" >/dev/null
  local rc=$?
  local start=$(grep -o '"event":"neural_start"[^}]*' "$work/err" | head -1 | grep -o '"tile":[0-9]*,"tiles":[0-9]*')
  local done_line=$(grep '"event":"done"' "$work/err" | grep -o '"seconds":[0-9.]*\|"neural_s":[0-9.]*\|"neural_network_s":[0-9.]*' | tr '\n' ' ')
  local dev=$(grep -o '"device":"[^"]*"' "$work/err" | head -1)
  echo "$label rc=$rc $dev $start $(cat "$work/rss") $done_line" | tee -a "$out/runs.txt"
  [[ $rc == 0 ]] || grep -v '"event"' "$work/err" | tail -3 | tee -a "$out/runs.txt"
}
for m in photo anime; do
  for s in 2 4 15; do
    for b in gpu auto; do run "$m-x$s-$b" "$work/o.tif" --model $m --scale $s --backend $b --compression zstd; done
  done
done
for b in gpu auto; do
  for i in $(seq "$reps"); do run "anime-x15-zstd-$b-rep$i" "$work/o.tif" --model anime --scale 15 --backend $b --compression zstd; done
done
$bin upscale "$in" "$work/crop.png" --width 256 --height 384 --filter nearest --overwrite -q
for m in photo anime; do
  $bin upscale "$work/crop.png" "$work/g-$m.png" --model $m --scale 3 --backend gpu --overwrite -q
  $bin upscale "$work/crop.png" "$work/c-$m.png" --model $m --scale 3 --backend cpu --overwrite -q
  cmp "$work/g-$m.png" "$work/c-$m.png" && echo "$m: GPU == CPU byte for byte (256x384 x3)" | tee -a "$out/runs.txt"
done
