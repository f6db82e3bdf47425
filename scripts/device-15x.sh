#!/usr/bin/env bash
# device-15x.sh — run on the lent GPU machine (see ../shared/device-gpu.md): the 15x case for
# --backend gpu and --backend cpu in the same run, with per-stage times, peak RSS, a byte
# comparison of the two outputs, and the GPU test binary on real hardware.
#
# Expects, relative to the repository root: target/release/gigascale, .gl/*.deb (Vulkan
# loader), bench/photo-2000x3000.jpg (made by scripts/bench-15x.sh) and, optionally, the test
# binary bench/gpu-tests. Results go to $OUT (or ./device-out).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
bin=${BIN:-./target/release/gigascale}
in=bench/photo-2000x3000.jpg
work=${WORK:-/tmp/gs}; mkdir -p "$work"
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; } | tee "$out/machine.txt"
$bin devices | tee "$out/devices.txt"
measure() {  # label, command...
  local label=$1; shift
  python3 - "$label" "$@" <<'PY' | tee -a "$out/runs.txt"
import resource, subprocess, sys, time
label, cmd = sys.argv[1], sys.argv[2:]
t = time.time()
try:
    r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=150)
except subprocess.TimeoutExpired:
    print(f"{label} TIMEOUT after 150 s"); sys.exit(0)
wall = time.time() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
done = [l for l in r.stderr.splitlines() if '"event":"done"' in l or '"event":"backend"' in l or '"event":"warning"' in l]
print(f"{label} exit={r.returncode} wall_s={wall:.2f} peak_rss_kb={rss} " + " ".join(done))
if r.returncode != 0:
    print(r.stderr[-2000:])
PY
}
for comp in none zstd; do
  for backend in gpu cpu; do
    for rep in 1 2 3; do
      rm -f "$work/$backend-$comp.tif"; sync
      measure "backend=$backend comp=$comp rep=$rep" $bin upscale "$in" "$work/$backend-$comp.tif" --scale 15 \
        --backend $backend --compression $comp --max-memory 64M --progress json --temp-dir "$work"
    done
  done
  if cmp -s "$work/gpu-$comp.tif" "$work/cpu-$comp.tif"; then echo "comp=$comp gpu and cpu outputs are byte-identical" | tee -a "$out/runs.txt";
  else echo "comp=$comp gpu and cpu outputs DIFFER" | tee -a "$out/runs.txt"; fi
  rm -f "$work"/*.tif
done
measure "backend=gpu comp=none gpu_memory=64M" $bin upscale "$in" "$work/small.tif" --scale 15 --backend gpu \
  --gpu-memory 64M --max-memory 64M --progress json --temp-dir "$work"
rm -f "$work"/*.tif
sync; dd if=/dev/zero of="$work/floor.bin" bs=4M count=974 conv=fsync 2>&1 | tail -1 | sed 's/^/write floor (4.08 GB, fsync): /' | tee -a "$out/runs.txt"
rm -f "$work/floor.bin"
if [[ -x bench/gpu-tests ]]; then bench/gpu-tests --test-threads 1 2>&1 | tail -15 | tee "$out/gpu-tests.txt"; fi
