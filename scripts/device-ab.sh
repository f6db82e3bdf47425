#!/usr/bin/env bash
# device-ab.sh — on the lent GPU machine (see ../shared/device-gpu.md): the 15x case with zstd,
# interleaved runs of several binaries and option sets on both backends, so that every figure
# in one table comes from the same machine in the same minutes. Also compares the GPU and CPU
# outputs byte for byte and runs the GPU test binary.
#
#   BINS="bench/gigascale bench/gigascale-prev" REPS=3 scripts/device-ab.sh
#
# Expects .gl/*.deb (Vulkan loader) and bench/photo-2000x3000.jpg (from scripts/bench-15x.sh).
# Results go to $OUT (or ./device-out).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
bins=${BINS:-bench/gigascale}
reps=${REPS:-3}
comp=${COMP:-zstd}
backends=${BACKENDS:-auto gpu cpu}
in=bench/photo-2000x3000.jpg
work=${WORK:-/tmp/gs}; mkdir -p "$work"
# option sets: "name|options"
configs=${CONFIGS:-"default|--filter lanczos3
rounded-bicubic|--filter bicubic --precision rounded"}
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; } | tee "$out/machine.txt"
first=${bins%% *}
$first devices | tee "$out/devices.txt"
run() {  # label, command...
  local label=$1; shift
  python3 - "$label" "$@" <<'PY' | tee -a "$out/runs.txt"
import resource, subprocess, sys, time, json
label, cmd = sys.argv[1], sys.argv[2:]
t = time.time()
r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=150)
wall = time.time() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
done = next((l for l in r.stderr.splitlines() if '"event":"done"' in l), "{}")
d = json.loads(done) if done.startswith("{") else {}
st = d.get("stages", d)
keys = ("gpu_tiles", "backend_init_s", "decode_s", "compute_s", "encode_s", "write_s", "gpu_upload_s", "gpu_wait_s", "gpu_readback_s")
extra = " ".join(f"{k}={st[k]:.2f}" if isinstance(st[k], float) else f"{k}={st[k]}" for k in keys if isinstance(st.get(k), (int, float)))
print(f"{label} exit={r.returncode} wall_s={wall:.2f} peak_rss_kb={rss} {extra}")
if r.returncode != 0:
    print(r.stderr[-1500:])
PY
}
for rep in $(seq "$reps"); do
  while IFS='|' read -r name opts; do
    for bin in $bins; do
      for backend in $backends; do
        o="$work/$(basename "$bin")-$name-$backend.tif"; rm -f "$o"; sync
        # shellcheck disable=SC2086
        run "bin=$(basename "$bin") config=$name backend=$backend comp=$comp rep=$rep" "$bin" upscale "$in" "$o" \
          --scale 15 --backend $backend --compression "$comp" --max-memory 64M --progress json --temp-dir "$work" $opts
      done
    done
  done <<<"$configs"
done
for c in "$work"/*-cpu.tif; do
  for b in auto gpu; do
    f=${c%-cpu.tif}-$b.tif
    [[ -f $f ]] || continue
    if cmp -s "$f" "$c"; then s=identical; else s=DIFFER; fi
    echo "$(basename "${c%-cpu.tif}"): $b and cpu outputs $s, $(stat -c %s "$f") bytes" | tee -a "$out/runs.txt"
  done
done
rm -f "$work"/*.tif
python3 - "$out/runs.txt" <<'PY' | tee "$out/medians.txt"
import re, sys, statistics, collections
runs = collections.defaultdict(list)
for l in open(sys.argv[1]):
    m = re.match(r"bin=(\S+) config=(\S+) backend=(\S+) comp=(\S+) rep=\d+ exit=0 wall_s=([\d.]+) peak_rss_kb=(\d+)", l)
    if m:
        runs[m.groups()[:4]].append((float(m[5]), int(m[6])))
for k, v in runs.items():
    w = [x[0] for x in v]
    print(" ".join(k), "median_s=%.2f" % statistics.median(w), "runs=" + ",".join("%.2f" % x for x in w), "peak_rss_mb=%.1f" % (max(x[1] for x in v) / 1024))
PY
if [[ ${FLOOR:-0} == 1 ]]; then
  # The disk's write floor for the uncompressed case: 4.08 GB of zeros with fsync.
  sync; dd if=/dev/zero of="$work/floor.bin" bs=4M count=974 conv=fsync 2>&1 | tail -1 | sed 's/^/write floor (4.08 GB, fsync): /' | tee -a "$out/runs.txt"
  rm -f "$work/floor.bin"
fi
if [[ ${X30:-0} == 1 ]]; then
  # Peak RSS of the same case at 4x the area (x30 -> 60000x90000), zstd, CPU backend.
  for s in 15 30 15 30; do
    run "area scale=$s comp=zstd backend=cpu" "$first" upscale "$in" "$work/x$s.tif" --scale $s --compression zstd \
      --backend cpu --max-memory 64M --progress json --temp-dir "$work" --overwrite
    rm -f "$work/x$s.tif"
  done
fi
if [[ -x bench/gpu-tests && ${GPU_TESTS:-1} == 1 ]]; then bench/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result" | tee "$out/gpu-tests.txt"; fi
