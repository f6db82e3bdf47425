#!/usr/bin/env python3
"""The three 48x48 flat-colour graphics crops of docs/results/2026-12-05-dev-zoo-graphics.txt
(a memory-map diagram, a web-page screenshot, a logo), cut from PNGs of the Rust
documentation that rustup's rust-docs component installs (MIT/Apache-2.0, like Rust's docs):
  scripts/graphics-crops.py OUTDIR  ->  OUTDIR/diagram.png, screen.png, logo.png
Then e.g. scripts/cugan-check.py OUTDIR/*.png, scripts/span-check.py OUTDIR/*.png,
ZOO_IMAGES=OUTDIR/diagram.png:... scripts/zoo-check.py (the ncnn wheels' runtimes).
"""
import os, subprocess, sys
from PIL import Image

html = os.path.join(subprocess.run(['rustc', '--print', 'sysroot'], capture_output=True, text=True,
                                   check=True).stdout.strip(), 'share/doc/rust/html')
crops = {
    'diagram': ('embedded-book/assets/nrf52-memory-map.png', (100, 100, 148, 148)),
    'screen': ('book/img/trpl14-01.png', (200, 100, 248, 148)),
    'logo': ('cargo/images/Cargo-Logo-Small.png', (20, 20, 68, 68)),
}
out = sys.argv[1] if len(sys.argv) > 1 else '.'
os.makedirs(out, exist_ok=True)
for name, (path, box) in crops.items():
    src = os.path.join(html, path)
    if not os.path.exists(src):
        sys.exit(f'{src}: not found (rustup component add rust-docs)')
    Image.open(src).convert('RGB').crop(box).save(os.path.join(out, f'{name}.png'))
    print(os.path.join(out, f'{name}.png'))
