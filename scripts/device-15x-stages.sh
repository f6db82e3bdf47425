#!/usr/bin/env bash
# device-15x-stages.sh — on the lent GPU machine (../shared/device-gpu.md): the 15x anime job
# (`--model anime --scale 15 --compression zstd`, the 2000x3000 photo) with `--backend gpu` and
# `auto`, REPS rounds of each binary of BINS (bench/<name>.xz, default gigascale) in turn, each
# run's `done` event (stage times); then one run of the first binary with its events (every
# 500th tile's) and GIGASCALE_TRACE_NEURAL lines beside its resident memory
# (scripts/rss-timeline.py). Carry .gl, bench. Prints to stdout.
set -u
. scripts/device-prelude.sh
device_gpu
bins=${BINS:-gigascale}
device_bins $bins
job=(upscale bench/photo-2000x3000.jpg /tmp/o.tif --overwrite --model anime --scale 15 --compression zstd --progress json)
for i in $(seq "${REPS:-3}"); do
  for b in $bins; do
    for backend in gpu auto; do
      /tmp/$b "${job[@]}" --backend $backend 2>/tmp/err >/dev/null
      echo "$b $backend $i rc=$?: $(grep '"event":"done"' /tmp/err)"
    done
  done
done
first=${bins%% *}
GIGASCALE_TRACE_NEURAL=1 python3 scripts/rss-timeline.py --every-ms 20 -- /tmp/$first "${job[@]}" --backend gpu 2>&1 |
  grep -v '"event":"\(neural\|decode\)"\|peak now' | awk '/"event":"tiles"/ { if (n++ % 500) next } { print }' |
  cut -c1-200 | head -80
