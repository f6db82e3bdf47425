// gigascale's page: upload (raw body, with progress), settings with the target size shown
// before starting, the job list live from Server-Sent Events, cancel, download, and a deep-zoom
// viewer (OpenSeadragon) with a before/after split. State for tests: window.gigascale.
"use strict";
const $ = (id) => document.getElementById(id);
const G = (window.gigascale = { upload: null, uploads: [], jobs: {}, viewer: null, tileFailures: 0, viewerLoaded: false, faces: null, faceOverlays: 0 });

function human(bytes) {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (bytes >= 1000 && i < u.length - 1) { bytes /= 1000; i++; }
  return `${bytes.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function target() {
  const u = G.upload, v = parseFloat($("amount").value), mode = $("mode").value;
  if (!u || !(v > 0)) return null;
  let w, h;
  if (mode === "scale") { w = Math.max(1, Math.round(u.width * v)); h = Math.max(1, Math.round(u.height * v)); }
  else if (mode === "width") { w = Math.round(v); h = Math.max(1, Math.round(u.height * v / u.width)); }
  else { h = Math.round(v); w = Math.max(1, Math.round(u.width * v / u.height)); }
  return { w, h, bytes: Math.floor(w * h * u.channels * 4 / 3) };
}

function showTarget() {
  const t = target();
  $("target").textContent = t ? `Output ${t.w} × ${t.h} px, about ${human(t.bytes)} before compression` : "";
}

// Several files: uploaded one after another; Start then queues a job for each.
async function uploadAll(files) {
  G.uploads = [];
  for (const f of files) {
    const u = await upload(f);
    if (u) G.uploads.push(u);
  }
  if (G.uploads.length > 1) $("source").textContent = `${G.uploads.length} images: ${G.uploads.map((u) => u.name).join(", ")}`;
}

function upload(file) {
  return new Promise((done) => uploadOne(file, done));
}

function uploadOne(file, done) {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/uploads?name=${encodeURIComponent(file.name)}`);
  const bar = $("upload-progress");
  bar.hidden = false;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onload = () => {
    bar.hidden = true;
    const r = JSON.parse(xhr.responseText || "{}");
    if (xhr.status !== 201) { $("source").textContent = `${file.name} refused: ${r.error || xhr.status}`; done(null); return; }
    G.upload = r;
    done(r);
    $("source").textContent = `${r.name}: ${r.width} × ${r.height} px, ${r.channels} channels, ${r.format}, ${human(r.bytes)}`;
    $("settings").hidden = false;
    showTarget();
  };
  xhr.onerror = () => { bar.hidden = true; $("source").textContent = "Upload failed"; done(null); };
  xhr.send(file);
}

async function start(ev) {
  ev.preventDefault();
  const mode = $("mode").value, v = parseFloat($("amount").value);
  const format = $("format").value;
  for (const u of G.uploads.length ? G.uploads : [G.upload]) {
    const body = { upload: u.id, filter: $("filter").value, format };
    if (format === "tif") Object.assign(body, { compression: $("compression").value, pyramid: $("pyramid").checked });
    if (format === "jpg") body.quality = parseInt($("quality").value, 10);
    body[mode] = mode === "scale" ? v : Math.round(v);
    if ($("model").value) body.model = $("model").value;
    if ($("restore-faces").checked) body.restore_faces = true;
    const r = await fetch("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (r.status !== 202) { $("target").textContent = `${u.name} refused: ${j.error || r.status}`; return; }
  }
  refresh();
}

async function refresh() {
  const r = await fetch("/api/jobs");
  if (r.ok) { G.jobs = {}; for (const j of await r.json()) G.jobs[j.id] = j; render(); }
}

// The list is updated in place: each event changes an item's text and bar, and its buttons
// only when its state changes. Rebuilding the list on every progress event replaced the
// buttons several times a second, and a click pressed on one button and released on its
// replacement was lost (Cancel on a running job, View as another job progressed).
function render() {
  const ul = $("jobs");
  const items = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  let i = 0;
  for (const j of Object.values(G.jobs)) {
    let li = items.get(j.id);
    items.delete(j.id);
    if (!li) li = jobItem(j.id);
    updateItem(li, j);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    i++;
  }
  for (const gone of items.values()) gone.remove();
}

function jobItem(id) {
  const li = document.createElement("li");
  li.dataset.id = id;
  const meta = document.createElement("div");
  meta.className = "meta";
  const bar = document.createElement("progress");
  bar.max = 1;
  li.append(document.createElement("div"), meta, bar, document.createElement("div"));
  return li;
}

function updateItem(li, j) {
  const [title, meta, bar, act] = li.children;
  setText(title, `${j.file_name} — ${j.output[0]} × ${j.output[1]}`);
  meta.classList.toggle("failed", j.state === "failed");
  const eta = j.eta_s != null && j.state === "running" ? `, ${Math.ceil(j.eta_s)} s left` : "";
  const pos = j.state === "queued" && j.position != null ? ` (#${j.position + 1} in the queue)` : "";
  setText(meta, `${j.state}${pos}${eta}${j.error ? ": " + j.error : ""}`);
  bar.value = j.progress || 0;
  if (li.dataset.state === j.state) return;
  li.dataset.state = j.state;
  act.replaceChildren();
  if (j.state === "queued" || j.state === "running") act.append(button("Cancel", () => del(j.id)));
  if (j.state === "done") {
    const a = document.createElement("a");
    a.href = `/api/jobs/${j.id}/result`; a.textContent = "Download"; a.download = j.file_name;
    act.append(a);
    // The viewer reads the result's pyramid; a PNG, a JPEG or a TIFF without one is download-only.
    const tif = !j.request.format || j.request.format === "tif";
    if (tif && j.request.pyramid !== false) act.append(button("View", () => view(j.id)));
    act.append(button("Delete", () => del(j.id)));
  }
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function button(text, f) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = text; b.onclick = f;
  return b;
}

async function del(id) { await fetch(`/api/jobs/${id}`, { method: "DELETE" }); refresh(); }

function view(id) {
  const j = G.jobs[id];
  history.replaceState(null, "", `/?job=${id}`);
  if (G.viewer) G.viewer.destroy();
  G.viewerLoaded = false;
  G.tileFailures = 0;
  G.faces = null;
  G.faceOverlays = 0;
  $("faces").checked = false;
  $("faces").onchange = () => showFaces(id);
  $("viewer-bar").hidden = false;
  $("viewer-title").textContent = j ? j.file_name : id;
  const v = (G.viewer = OpenSeadragon({
    id: "viewer", prefixUrl: "/static/osd/images/", tileSources: `/api/jobs/${id}/dz/image.dzi`,
    showNavigator: true, showRotationControl: false, showFlipControl: false, maxZoomPixelRatio: 4,
  }));
  v.addHandler("tile-load-failed", () => { G.tileFailures++; });
  v.world.addHandler("add-item", (e) => {
    if (v.world.getItemCount() === 1) {
      e.item.addHandler("fully-loaded-change", (f) => { if (f.fullyLoaded) G.viewerLoaded = true; });
      before(v, id);
    }
  });
}

// The input, scaled to the result's world size, over the result; the slider clips it.
function before(v, id) {
  const u = G.jobs[id] && G.upload && G.upload.id === G.jobs[id].request.upload ? G.upload : null;
  v.addTiledImage({
    tileSource: { type: "image", url: `/api/jobs/${id}/input` }, x: 0, y: 0, width: 1,
    success: (e) => {
      const item = e.item, size = item.getContentSize();
      const clip = () => item.setClip(new OpenSeadragon.Rect(0, 0, size.x * (1 - $("split").value / 100), size.y));
      $("split").oninput = clip;
      clip();
    },
    error: () => { $("split").disabled = true; },
  });
  return u;
}

// The faces in the input (GET /api/jobs/ID/faces) as boxes over the viewer: the image's world
// is 1 wide, so a box in input pixels divided by the input's width lands on the result too.
async function showFaces(id) {
  const v = G.viewer;
  if (!v) return;
  v.clearOverlays();
  G.faceOverlays = 0;
  if (!$("faces").checked) return;
  if (!G.faces) {
    const r = await fetch(`/api/jobs/${id}/faces`);
    const body = await r.json();
    if (!r.ok) { $("viewer-title").textContent = `faces: ${body.error || r.status}`; $("faces").checked = false; return; }
    G.faces = body;
  }
  const w = G.faces.width;
  for (const f of G.faces.faces) {
    const [x0, y0, x1, y1] = f.box;
    const el = document.createElement("div");
    el.className = "face-box";
    el.title = `face, score ${f.score.toFixed(3)}`;
    v.addOverlay({ element: el, location: new OpenSeadragon.Rect(x0 / w, y0 / w, (x1 - x0) / w, (y1 - y0) / w) });
    G.faceOverlays++;
  }
}

function events() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("status").textContent = "connected"; };
  es.onerror = () => { $("status").textContent = "reconnecting…"; };
  es.addEventListener("snapshot", (e) => {
    G.jobs = {};
    for (const j of JSON.parse(e.data).jobs) G.jobs[j.id] = j;
    render();
  });
  es.addEventListener("job", (e) => {
    const m = JSON.parse(e.data);
    if (m.event === "library") return;
    if (m.event === "progress" && G.jobs[m.job]) Object.assign(G.jobs[m.job], m.data);
    else if (m.event === "deleted") delete G.jobs[m.job];
    else if (m.event === "queue") { refresh(); return; }
    else if (m.data && m.data.id) G.jobs[m.job] = Object.assign(G.jobs[m.job] || {}, m.data);
    render();
  });
}

function init() {
  const drop = $("drop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); uploadAll([...e.dataTransfer.files]); };
  $("file").onchange = () => uploadAll([...$("file").files]);
  $("format").onchange = () => {
    const f = $("format").value;
    $("quality-label").hidden = f !== "jpg";
    $("compression-label").hidden = $("pyramid-label").hidden = f !== "tif";
  };
  for (const id of ["mode", "amount"]) $(id).oninput = showTarget;
  $("settings").onsubmit = start;
  // The face-restoration toggle exists only where the server has a restorer (serve --faces).
  fetch("/api/capabilities").then((r) => r.json()).then((c) => { $("restore-faces-label").hidden = !c.restore_faces; }).catch(() => {});
  events();
  const job = new URLSearchParams(location.search).get("job");
  if (job && /^[0-9a-f]{16}$/.test(job)) refresh().then(() => view(job));
}
init();
