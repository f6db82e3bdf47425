#!/usr/bin/env python3
"""Draws docs/images/faces-detected.jpg: `gigascale faces` on fixtures/astronaut-group.jpg, its
boxes and landmarks over the image, and beside it the same image cut as a 64-pixel tile run
cuts it (one tile's core and its 256-pixel margin drawn), to show what "owned anchors" means.

    cargo build --release && python3 scripts/faces-picture.py   (needs Pillow)
"""
import json, os, subprocess
from PIL import Image, ImageDraw

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = os.path.join(ROOT, "target", "release", "gigascale")
src = os.path.join(ROOT, "fixtures", "astronaut-group.jpg")
found = json.loads(subprocess.run([BIN, "faces", src, "--json"], check=True, capture_output=True).stdout)
img = Image.open(src).convert("RGB")
left = img.copy()
d = ImageDraw.Draw(left)
for f in found["faces"]:
    d.rectangle(f["box"], outline=(255, 220, 0), width=2)
    for x, y in f["landmarks"]:
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(0, 255, 120))
    d.text((f["box"][0], f["box"][3] + 2), f"{f['score']:.3f}", fill=(255, 220, 0))
right = img.copy()
d = ImageDraw.Draw(right, "RGBA")
tile, margin = 64, 256
for x in range(0, img.width, tile):
    d.line([(x, 0), (x, img.height)], fill=(255, 255, 255, 90))
for y in range(0, img.height, tile):
    d.line([(0, y), (img.width, y)], fill=(255, 255, 255, 90))
core = (128, 64, 192, 128)
win = (max(0, core[0] - margin), max(0, core[1] - margin), min(img.width, core[2] + margin), min(img.height, core[3] + margin))
d.rectangle(win, outline=(80, 160, 255, 255), width=3, fill=(80, 160, 255, 40))
d.rectangle(core, outline=(255, 60, 60, 255), width=3, fill=(255, 60, 60, 90))
d.text((core[0] + 4, core[1] + 4), "core", fill=(255, 255, 255))
d.text((win[0] + 6, win[3] - 16), "window = core + 256 px margin", fill=(255, 255, 255))
out = Image.new("RGB", (img.width * 2 + 10, img.height), (255, 255, 255))
out.paste(left, (0, 0))
out.paste(right, (img.width + 10, 0))
out.save(os.path.join(ROOT, "docs", "images", "faces-detected.jpg"), quality=85)
print(len(found["faces"]), "faces drawn")
