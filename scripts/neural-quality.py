#!/usr/bin/env python3
"""The PSNR table and the crop pictures of docs/neural.md.

Photos: five of KDE's wallpapers (Debian package plasma-workspace-wallpapers, photographs under
CC-BY-SA / LGPL as the package records). From each, a 512x512 centre crop is the reference (HR);
it is shrunk by 2 and by 4 with Pillow's bicubic filter (LR), and enlarged back by: Pillow bicubic,
gigascale lanczos3, gigascale --model photo (x2; x4 = two passes), gigascale --model anime (x4).
Y-PSNR (BT.601 luma, 4 px border left out) against HR.
  scripts/neural-quality.py [WALLPAPER_DIR] > table.md   # writes docs/images/neural-crops.png
"""
import os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gs = os.path.join(root, 'target/release/gigascale')
wp = sys.argv[1] if len(sys.argv) > 1 else '/tmp/wp/x/usr/share/wallpapers'
photos = ['ColorfulCups', 'FallenLeaf', 'Path', 'Autumn', 'BytheWater']
tmp = tempfile.mkdtemp()

def y(a):
    a = a.astype(np.float64)
    return 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255

def psnr(a, b):
    d = (y(a) - y(b))[4:-4, 4:-4]
    return 10 * np.log10(255.0 ** 2 / np.mean(d * d))

def run(src, out, *args):
    subprocess.run([gs, 'upscale', src, out, '--overwrite', '-q', '--backend', 'cpu', *args], check=True)
    return np.asarray(Image.open(out).convert('RGB'))

def methods(lr_path, f):
    lr = Image.open(lr_path)
    out = {'bicubic (Pillow)': np.asarray(lr.resize((512, 512), Image.BICUBIC)),
           'lanczos3 (gigascale)': run(lr_path, f'{tmp}/l.png', '--scale', str(f))}
    if f == 2:
        out['photo (x2)'] = run(lr_path, f'{tmp}/p.png', '--model', 'photo', '--scale', '2')
        out['anime (x4, then x0.5)'] = run(lr_path, f'{tmp}/a.png', '--model', 'anime', '--scale', '2')
    else:
        out['photo (x2, 2 passes)'] = run(lr_path, f'{tmp}/p.png', '--model', 'photo', '--model-passes', '2', '--scale', '4')
        out['anime (x4)'] = run(lr_path, f'{tmp}/a.png', '--model', 'anime', '--scale', '4')
    return out

rows, crops = {}, None
for name in photos:
    im = Image.open(f'{wp}/{name}/contents/images/2560x1600.jpg').convert('RGB')
    w, h = im.size
    hr = im.crop((w // 2 - 256, h // 2 - 256, w // 2 + 256, h // 2 + 256))
    hra = np.asarray(hr)
    for f in (2, 4):
        lr_path = f'{tmp}/{name}-{f}.png'
        hr.resize((512 // f, 512 // f), Image.BICUBIC).save(lr_path)
        for m, a in methods(lr_path, f).items():
            rows.setdefault((f, m), []).append(psnr(a, hra))
            if name == 'ColorfulCups' and f == 4:
                crops = crops or [('HR (reference)', hra), ('LR x4, nearest', np.asarray(Image.open(lr_path).resize((512, 512), Image.NEAREST)))]
                crops.append((m, a))

print('| factor | method | ' + ' | '.join(photos) + ' | mean |')
print('|---|---|' + '---|' * (len(photos) + 1))
for (f, m), v in rows.items():
    print(f'| x{f} | {m} | ' + ' | '.join(f'{x:.2f}' for x in v) + f' | **{np.mean(v):.2f}** |')

# Pictures: the 128x128 region of most detail (gradient energy in HR), shown at 2x, side by side.
from PIL import ImageDraw
g = y(crops[0][1])
e = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
best = max(((e[r:r + 128, c:c + 128].sum(), r, c) for r in range(0, 384, 32) for c in range(0, 384, 32)))
_, r0, c0 = best
cell, pad = 256, 22
sheet = Image.new('RGB', (cell * len(crops), cell + pad), 'white')
d = ImageDraw.Draw(sheet)
for i, (label, a) in enumerate(crops):
    c = Image.fromarray(a).crop((c0, r0, c0 + 128, r0 + 128)).resize((cell, cell), Image.NEAREST)
    sheet.paste(c, (i * cell, pad))
    d.text((i * cell + 4, 4), label, fill='black')
sheet.save(os.path.join(root, 'docs/images/neural-crops.png'))
