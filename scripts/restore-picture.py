#!/usr/bin/env python3
"""docs/images/faces-restore-steps.jpg: the steps of `upscale --faces` on the largest face of the
group fixture — the face and its landmarks, the aligned 512x512 crop with the template's
points, the soft mask, the restorer's output, and the output pixels after pasting — drawn from
scripts/restore-reference.py's functions (the pipeline the tests hold ours to).

    python3 scripts/restore-picture.py RESTORER.onnx OUT.jpg   (numpy, Pillow, onnxruntime)

With the random-weight test restorer the "restored" face is noise: the picture shows where
things go, not what a trained model makes of them.
"""
import importlib.util, json, os, subprocess, sys
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ref", os.path.join(here, "restore-reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

model, out_path = sys.argv[1], sys.argv[2]
fixture = os.path.join(here, "..", "fixtures", "astronaut-group.jpg")
img = np.asarray(Image.open(fixture).convert("RGB"))
found = json.loads(subprocess.run([sys.executable, os.path.join(here, "faces-reference.py"), fixture],
                                  check=True, capture_output=True, text=True).stdout)
face = found["faces"][0]
sim = ref.similarity(face["landmarks"])
crop = ref.crop(img, sim)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
restored = ref.restore(ort.InferenceSession(model, opts), crop, 0.5)

S = 256  # each panel's edge
panels = []
# 1: the face in the input, landmarks drawn, enlarged.
x0, y0, x1, y1 = face["box"]
pad = (x1 - x0) * 0.6
box = (int(x0 - pad), int(y0 - pad), int(x1 + pad), int(y1 + pad))
p = Image.fromarray(img).crop(box).resize((S, S), Image.LANCZOS)
d = ImageDraw.Draw(p)
k = S / (box[2] - box[0])
for x, y in face["landmarks"]:
    cx, cy = (x - box[0]) * k, (y - box[1]) * k
    d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), outline=(255, 255, 0), width=2)
panels.append((p, "input + 5 landmarks"))
# 2: the aligned crop, the template's points drawn.
p = Image.fromarray(crop).resize((S, S), Image.LANCZOS)
d = ImageDraw.Draw(p)
for x, y in ref.FFHQ_512:
    cx, cy = x * S / 512, y * S / 512
    d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), outline=(0, 255, 255), width=2)
panels.append((p, "aligned 512x512 crop"))
# 3: the soft mask.
j, i = np.mgrid[0:512, 0:512].astype(np.float64)
dist = np.minimum.reduce([i + 0.5, 511.5 - i, j + 0.5, 511.5 - j])
t = np.clip((dist - 25) / 50, 0, 1)
panels.append((Image.fromarray((t * t * (3 - 2 * t) * 255).astype(np.uint8)).convert("RGB").resize((S, S)), "soft mask"))
# 4: the restorer's output.
panels.append((Image.fromarray(restored).resize((S, S), Image.LANCZOS), "restored (random weights)"))
# 5: pasted back into a 2x output.
out = np.asarray(Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.LANCZOS)).copy()
ref.paste(out, restored, sim, (0.5, 0.5), "lanczos3")
big = tuple(2 * v for v in box)
panels.append((Image.fromarray(out).crop(big).resize((S, S), Image.LANCZOS), "pasted into the 2x output"))

sheet = Image.new("RGB", (len(panels) * (S + 8) + 8, S + 36), (255, 255, 255))
d = ImageDraw.Draw(sheet)
for n, (p, label) in enumerate(panels):
    sheet.paste(p, (8 + n * (S + 8), 8))
    d.text((8 + n * (S + 8), S + 14), f"{n + 1}. {label}", fill=(0, 0, 0))
sheet.save(out_path, quality=88)
print(out_path)
