//! The page in a real browser: headless Chromium driven over W3C WebDriver (chromedriver).
//! Uploads a fixture through the file input, starts a job, waits for done and for the deep-zoom
//! viewer to finish loading with no tile load failure, takes a screenshot (kept in
//! `target/tmp/browser-serve.png`) and checks that it shows an image, not a blank page.
//! CI installs `chromium` and `chromium-driver` and sets `GIGASCALE_REQUIRE_BROWSER=1`, so
//! there the test must run; elsewhere it is skipped when they are missing.
use base64::Engine;
use gigascale::serve::{ServeOptions, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
    session: String,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let r = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self.agent.post(&url).send_json(b.unwrap_or(json!({}))),
        };
        let v: Value = r.unwrap().body_mut().read_json().unwrap();
        assert!(v["value"].get("error").is_none(), "{method} {path}: {v}");
        v["value"].clone()
    }
    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }
    fn script(&self, js: &str) -> Value {
        self.session("POST", "/execute/sync", Some(json!({"script": js, "args": []})))
    }
    fn wait(&self, js: &str, secs: u64, what: &str) -> Value {
        let t = Instant::now();
        loop {
            let v = self.script(js);
            if !v.is_null() && v != json!(false) {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn find(&self, css: &str) -> String {
        let v = self.session("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v[ELEMENT].as_str().unwrap().to_string()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.agent.delete(format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    let required = std::env::var("GIGASCALE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    let found = Command::new("chromedriver").arg("--version").output().is_ok_and(|o| o.status.success());
    let Some(browser) = browser.filter(|_| found) else {
        assert!(!required, "chromium and chromedriver must be installed (Debian: chromium chromium-driver)");
        eprintln!("SKIPPED: chromium/chromedriver not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let base = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while agent.get(format!("{base}/status")).call().is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut d = Driver { child, base, agent, session: String::new() };
    let args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"];
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
        "goog:chromeOptions": {"binary": browser, "args": args}, "goog:loggingPrefs": {"browser": "ALL"}}}});
    d.session = d.call("POST", "/session", Some(caps))["sessionId"].as_str().unwrap().to_string();
    Some(d)
}

#[test]
fn the_page_uploads_runs_a_job_and_shows_it_in_the_viewer() {
    let Some(d) = start_driver() else { return };
    let dir = std::env::temp_dir().join(format!("gigascale-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut o = ServeOptions::new(dir.clone()).unwrap();
    o.listen = "127.0.0.1:0".parse().unwrap();
    // A face restorer (the random-weight GFPGAN) where ONNX Runtime is at hand: the page then
    // offers "restore faces".
    let restorer = crate::restore::runtime().map(|(_, lib)| {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/restorers/gfpgan-tiny.onnx");
        let mut f = gigascale::faces::RestoreOptions::new(model);
        f.runtime = Some(lib);
        f
    });
    let restoring = restorer.is_some();
    o.faces = restorer;
    let server = Server::start(o).unwrap();
    d.session("POST", "/url", Some(json!({"url": server.url})));
    let input = d.find("#file");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coffee.jpg");
    let text = fixture.to_str().unwrap();
    d.session("POST", &format!("/element/{input}/value"), Some(json!({"text": text})));
    d.wait("return window.gigascale.upload && window.gigascale.upload.id", 20, "the upload");
    let target = d.script("document.getElementById('amount').value = '12'; document.getElementById('amount').dispatchEvent(new Event('input')); return document.getElementById('target').textContent");
    assert!(target.as_str().unwrap().contains("1800 × 1200"), "target size shown before starting: {target}");
    let start = d.find("#start");
    d.session("POST", &format!("/element/{start}/click"), None);
    let done = d.wait(
        "const j = Object.values(window.gigascale.jobs).find(j => j.state === 'done'); return j ? j.id : null",
        120,
        "the job to finish",
    );
    let id = done.as_str().unwrap();
    let view = d.find(&format!("li[data-id='{id}'] button:nth-of-type(1)"));
    // Every event redraws the list; the button found before a redraw must still be the one on
    // the page after it, or a click pressed before an event and released after it is lost.
    d.script(&format!("Object.assign(window.gigascale.jobs['{id}'], {{progress: 1}}); render(); return 0"));
    d.session("POST", &format!("/element/{view}/click"), None);
    d.wait("return window.gigascale.viewerLoaded", 60, "the viewer to load");
    // Let the before/after overlay settle, then look.
    std::thread::sleep(Duration::from_millis(500));
    let failures = d.script("return window.gigascale.tileFailures");
    assert_eq!(failures, json!(0), "tile load failures");
    let shot = d.session("GET", "/screenshot", None);
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-serve.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("screenshot: {}", out.display());
    assert_shows_an_image(&png);
    // `/?job=ID` opens that job's viewer directly.
    let direct = format!("{}/?job={id}", server.url.split("/?").next().unwrap());
    d.session("POST", "/url", Some(json!({"url": direct})));
    d.wait("return window.gigascale && window.gigascale.viewerLoaded", 60, "the viewer opened by /?job=ID");
    assert_eq!(d.script("return window.gigascale.tileFailures"), json!(0));
    // Several files at once, as JPEG: a job for each, download-only (no viewer), JPEG bytes.
    d.session("POST", "/url", Some(json!({"url": server.url})));
    let input = d.find("#file");
    let two = [
        fixture.to_str().unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/camera-gray.jpg").to_str().unwrap(),
    ]
    .join("\n");
    d.session("POST", &format!("/element/{input}/value"), Some(json!({"text": two})));
    d.wait("return window.gigascale.uploads.length === 2", 20, "both uploads");
    d.script("document.getElementById('format').value = 'jpg'; document.getElementById('format').dispatchEvent(new Event('change')); return 0");
    let start = d.find("#start");
    d.session("POST", &format!("/element/{start}/click"), None);
    let jpegs = d.wait(
        "const js = Object.values(window.gigascale.jobs).filter(j => j.request.format === 'jpg' && j.state === 'done'); return js.length === 2 ? js.map(j => j.id) : null",
        120,
        "two JPEG jobs to finish",
    );
    for id in jpegs.as_array().unwrap() {
        let id = id.as_str().unwrap();
        assert_eq!(
            d.script(&format!("return document.querySelectorAll(\"li[data-id='{id}'] button\").length")),
            json!(1),
            "Delete only: no viewer for a JPEG"
        );
        let url = format!("{}/api/jobs/{id}/result", server.url.split("/?").next().unwrap());
        let r = ureq::get(&url)
            .header("Authorization", &format!("Bearer {}", server.url.split("token=").nth(1).unwrap()))
            .call()
            .unwrap();
        let bytes = r.into_body().read_to_vec().unwrap();
        assert_eq!(&bytes[..3], b"\xFF\xD8\xFF", "a JPEG");
    }
    // Faces: a group photo's job, viewed, with the "faces" box ticked: one box per face found.
    d.session("POST", "/url", Some(json!({"url": server.url})));
    let input = d.find("#file");
    let group = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/astronaut-group.jpg");
    d.session("POST", &format!("/element/{input}/value"), Some(json!({"text": group.to_str().unwrap()})));
    d.wait(
        "return window.gigascale.upload && window.gigascale.upload.name === 'astronaut-group'",
        20,
        "the group upload",
    );
    d.script("document.getElementById('amount').value = '2'; document.getElementById('amount').dispatchEvent(new Event('input')); return 0");
    // The page asks the server's capabilities as it loads (`GET /api/capabilities`): the
    // toggle is shown once the answer is in, and only where the server has a restorer.
    if restoring {
        d.wait("return !document.getElementById('restore-faces-label').hidden", 20, "the restore-faces toggle");
    }
    let offered = d.script("return !document.getElementById('restore-faces-label').hidden");
    assert_eq!(offered, json!(restoring), "the restore-faces toggle is shown exactly when the server has a restorer");
    if restoring {
        let toggle = d.find("#restore-faces");
        d.session("POST", &format!("/element/{toggle}/click"), None);
    }
    let start = d.find("#start");
    d.session("POST", &format!("/element/{start}/click"), None);
    let done = d.wait(
        "const j = Object.values(window.gigascale.jobs).find(j => j.file_name.startsWith('astronaut-group') && j.state === 'done'); return j ? j.id : null",
        120,
        "the group job to finish",
    );
    let id = done.as_str().unwrap();
    let asked = d.script(&format!("return window.gigascale.jobs['{id}'].request.restore_faces === true"));
    assert_eq!(asked, json!(restoring), "the job asked for restoration when ticked");
    let view = d.find(&format!("li[data-id='{id}'] button:nth-of-type(1)"));
    d.session("POST", &format!("/element/{view}/click"), None);
    d.wait("return window.gigascale.viewerLoaded", 60, "the group's viewer to load");
    let faces = d.find("#faces");
    d.session("POST", &format!("/element/{faces}/click"), None);
    let shown = d.wait("return window.gigascale.faceOverlays || null", 60, "the face boxes");
    assert_eq!(shown, json!(3), "one box per face");
    let boxes = d.script("return document.querySelectorAll('#viewer .face-box').length");
    assert_eq!(boxes, json!(3));
    let shot = d.session("GET", "/screenshot", None);
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-faces.png"), &png).unwrap();
    // No console errors and no Content-Security-Policy violations on any of it.
    let log = d.session("POST", "/se/log", Some(json!({"type": "browser"})));
    let severe: Vec<&Value> = log.as_array().unwrap().iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    drop(d);
    server.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The viewer's area (right of the 24em side bar, below the bars) holds a photograph: many
/// distinct colours and real contrast, not a blank or single-colour page.
fn assert_shows_an_image(png_bytes: &[u8]) {
    let mut r = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in h / 4..h * 3 / 4 {
        for x in w / 2..w * 7 / 8 {
            let p = &buf[(y * w + x) * ch..][..3];
            colours.insert((p[0] >> 2, p[1] >> 2, p[2] >> 2));
            let l = (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0;
            (sum, sq, n) = (sum + l, sq + l * l, n + 1.0);
        }
    }
    let sd = (sq / n - (sum / n).powi(2)).sqrt();
    assert!(colours.len() > 200 && sd > 10.0, "the viewer looks blank: {} colours, sd {sd:.1}", colours.len());
}
