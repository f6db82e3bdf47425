//! `gigascale serve` against an in-process server on 127.0.0.1:0: upload, job, SSE until
//! done, the result equal to the CLI's output, Range and ETag, the DZI descriptor and tiles
//! equal to the TIFF's tiles, the refusals (401, 403, 404, 413, 415, 503), cancel, and a
//! restart on the same work directory.
use crate::util::*;
use gigascale::serve::{ServeOptions, Server};
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// A client for one server: base address and token.
struct Client {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

type Reply = (u16, ureq::http::HeaderMap, Vec<u8>);

impl Client {
    fn new(s: &Server, token: &str) -> Client {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { base: format!("http://127.0.0.1:{}", s.addr.port()), auth: format!("Bearer {token}"), agent }
    }
    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = r.unwrap();
        let body = r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
        (r.status().as_u16(), r.headers().clone(), body)
    }
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base)).header("Authorization", &self.auth);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call())
    }
    fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path, &[]);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
    fn post(&self, path: &str, body: &[u8]) -> Reply {
        Self::finish(self.agent.post(format!("{}{path}", self.base)).header("Authorization", &self.auth).send(body))
    }
    fn post_json(&self, path: &str, v: Value) -> Reply {
        Self::finish(self.agent.post(format!("{}{path}", self.base)).header("Authorization", &self.auth).send_json(v))
    }
    fn delete(&self, path: &str) -> Reply {
        Self::finish(self.agent.delete(format!("{}{path}", self.base)).header("Authorization", &self.auth).call())
    }
    fn upload(&self, file: &Path) -> Value {
        let (status, _, body) = self.post("/api/uploads?name=photo.jpg", &std::fs::read(file).unwrap());
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
    fn wait_state(&self, id: &str, states: &[&str], secs: u64) -> Value {
        let t = Instant::now();
        loop {
            let j = self.json(&format!("/api/jobs/{id}"));
            if states.contains(&j["state"].as_str().unwrap_or("")) {
                return j;
            }
            assert!(t.elapsed() < Duration::from_secs(secs), "job {id} stuck: {j}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn options(dir: &Path, token: &str) -> ServeOptions {
    let mut o = ServeOptions::new(dir.to_path_buf()).unwrap();
    o.listen = "127.0.0.1:0".parse().unwrap();
    o.token = Some(token.into());
    o.max_memory = 256 << 20;
    o
}

/// Reads the SSE stream until the `job` event `done` for `id`, returning every event's data.
fn sse_until_done(c: &Client, id_rx: std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let r = c.agent.get(format!("{}/api/events", c.base)).header("Authorization", &c.auth).call().unwrap();
    assert_eq!(r.headers().get("content-type").unwrap(), "text/event-stream");
    let mut lines = std::io::BufReader::new(r.into_body().into_reader()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "event: snapshot", "the stream starts with a snapshot");
    let id = id_rx.recv().unwrap();
    let mut seen = Vec::new();
    for l in lines {
        let l = l.unwrap();
        if let Some(d) = l.strip_prefix("data: ") {
            seen.push(d.to_string());
            let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
            if v["event"] == "done" && v["job"] == id.as_str() {
                return seen;
            }
        }
    }
    panic!("the event stream ended before done: {seen:?}");
}

#[test]
fn upload_job_events_result_and_deep_zoom() {
    let dir = scratch("api");
    let server = Server::start(options(&dir, "t0ken")).unwrap();
    assert!(server.url.ends_with("/?token=t0ken") && server.url.starts_with("http://127.0.0.1:"), "{}", server.url);
    let c = Client::new(&server, "t0ken");
    let u = c.upload(&fixture("coffee.jpg"));
    assert_eq!((u["width"].as_u64(), u["height"].as_u64(), u["format"].as_str()), (Some(150), Some(100), Some("jpeg")));
    let (tx, rx) = std::sync::mpsc::channel();
    let c2 = Client::new(&server, "t0ken");
    let watcher = std::thread::spawn(move || sse_until_done(&c2, rx));
    std::thread::sleep(Duration::from_millis(200));
    let req = json!({"upload": u["id"], "scale": 6, "compression": "zstd"});
    let (status, _, body) = c.post_json("/api/jobs", req);
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["output"], json!([900, 600]));
    let id = j["id"].as_str().unwrap().to_string();
    tx.send(id.clone()).unwrap();
    let events = watcher.join().unwrap();
    assert!(events.iter().any(|e| e.contains("\"progress\"")), "progress events: {events:?}");
    // "done" came after the rename: the result is there, whole.
    let (status, headers, result) = c.get(&format!("/api/jobs/{id}/result"), &[]);
    assert_eq!(status, 200);
    let cd = headers.get("content-disposition").unwrap().to_str().unwrap();
    assert!(cd.contains("photo_6x_lanczos3.tif"), "{cd}");
    let cli = dir.join("cli.tif");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .args(["upscale", fixture("coffee.jpg").to_str().unwrap(), cli.to_str().unwrap()])
        .args(["--scale", "6", "--compression", "zstd", "--pyramid", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(result == std::fs::read(&cli).unwrap(), "the server's result differs from the CLI's");
    check_ranges(&c, &id, &result, &headers);
    check_deep_zoom(&c, &id, &cli);
    let (status, _, input) = c.get(&format!("/api/jobs/{id}/input"), &[]);
    assert!(status == 200 && input == std::fs::read(fixture("coffee.jpg")).unwrap());
    refusals(&c, &server, &id);
    // A restart on the same work directory keeps the jobs and their files.
    server.shutdown().unwrap();
    let server = Server::start(options(&dir, "t0ken")).unwrap();
    let c = Client::new(&server, "t0ken");
    assert_eq!(c.json(&format!("/api/jobs/{id}"))["state"], "done");
    assert!(c.get(&format!("/api/jobs/{id}/result"), &[]).2 == result);
    // Deleting a finished job deletes its files.
    assert_eq!(c.delete(&format!("/api/jobs/{id}")).0, 204);
    assert_eq!(c.get(&format!("/api/jobs/{id}/result"), &[]).0, 404);
    server.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn check_ranges(c: &Client, id: &str, result: &[u8], headers: &ureq::http::HeaderMap) {
    let path = format!("/api/jobs/{id}/result");
    let (status, h, part) = c.get(&path, &[("Range", "bytes=10-19")]);
    assert_eq!((status, &part[..]), (206, &result[10..20]));
    let cr = format!("bytes 10-19/{}", result.len());
    assert_eq!(h.get("content-range").unwrap(), cr.as_str());
    let (status, _, tail) = c.get(&path, &[("Range", "bytes=-5")]);
    assert_eq!((status, &tail[..]), (206, &result[result.len() - 5..]));
    assert_eq!(c.get(&path, &[("Range", "bytes=999999999-")]).0, 416);
    let etag = headers.get("etag").unwrap().to_str().unwrap();
    assert_eq!(c.get(&path, &[("If-None-Match", etag)]).0, 304);
    // RFC 9110: weak comparison, lists and `*` for If-None-Match.
    for v in [format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_string()] {
        assert_eq!(c.get(&path, &[("If-None-Match", &v)]).0, 304, "{v}");
    }
    assert_eq!(c.get(&path, &[("If-None-Match", "\"other\"")]).0, 200);
    // If-Range: the range while the validator is current, else the whole file.
    assert_eq!(c.get(&path, &[("Range", "bytes=0-3"), ("If-Range", etag)]).0, 206);
    for stale in ["\"stale\"".to_string(), format!("W/{etag}"), "Tue, 01 Dec 2026 10:00:00 GMT".into()] {
        let (status, _, body) = c.get(&path, &[("Range", "bytes=0-3"), ("If-Range", &stale)]);
        assert_eq!((status, body.len()), (200, result.len()), "If-Range {stale}");
    }
    // Several ranges, other units and bad syntax are ignored (200), not refused.
    for ignored in ["bytes=0-1,4-5", "items=0-3", "bytes=5-2", "bytes=x-y"] {
        let (status, _, body) = c.get(&path, &[("Range", ignored)]);
        assert_eq!((status, body.len()), (200, result.len()), "{ignored}");
    }
    let cd = headers.get("content-disposition").unwrap().to_str().unwrap();
    assert!(cd.contains("filename=\"") && cd.contains("filename*=UTF-8''"), "{cd}");
}

/// DZI tiles equal the TIFF's tiles, level by level, 8-bit.
fn check_deep_zoom(c: &Client, id: &str, tif: &Path) {
    let (status, _, xml) = c.get(&format!("/api/jobs/{id}/dz/image.dzi"), &[]);
    let xml = String::from_utf8(xml).unwrap();
    assert!(status == 200 && xml.contains("TileSize=\"256\"") && xml.contains("Overlap=\"0\""), "{xml}");
    assert!(xml.contains("Width=\"900\" Height=\"600\""), "{xml}");
    // 900x600: DZI level 10 is full size; 9 is 450x300, 8 is 225x150 (the last stored), 0 is 1x1.
    let mut d = tiff::decoder::Decoder::new(std::fs::File::open(tif).unwrap()).unwrap();
    for (level, ifd, tiles) in [(10u32, 0usize, [(0u32, 0u32), (3, 2)]), (9, 1, [(1, 1), (0, 0)])] {
        d.seek_to_image(ifd).unwrap();
        let (w, _) = d.dimensions().unwrap();
        for (x, y) in tiles {
            let i = y * w.div_ceil(256) + x;
            let want = match d.read_chunk(i).unwrap() {
                tiff::decoder::DecodingResult::U8(v) => v,
                _ => panic!(),
            };
            let (status, _, png) = c.get(&format!("/api/jobs/{id}/dz/image_files/{level}/{x}_{y}.png"), &[]);
            assert_eq!(status, 200);
            let (got, gw, gh) = decode_png(&png);
            assert_eq!((gw, gh), d.chunk_data_dimensions(i), "level {level} tile {x},{y} size");
            assert!(got == want, "level {level} tile {x},{y}: pixels differ from the TIFF's");
        }
    }
    let (status, _, png) = c.get(&format!("/api/jobs/{id}/dz/image_files/0/0_0.png"), &[]);
    assert_eq!((status, decode_png(&png).1), (200, 1), "level 0 is one pixel, reduced on the fly");
    assert_eq!(c.get(&format!("/api/jobs/{id}/dz/image_files/10/9_9.png"), &[]).0, 404);
    assert_eq!(c.get(&format!("/api/jobs/{id}/dz/image_files/11/0_0.png"), &[]).0, 404);
}

fn decode_png(b: &[u8]) -> (Vec<u8>, u32, u32) {
    let mut r = png::Decoder::new(std::io::Cursor::new(b)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (buf, info.width, info.height)
}

/// A raw request (to send a foreign Host header, which HTTP clients will not).
fn raw(addr: std::net::SocketAddr, request: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn refusals(c: &Client, server: &Server, id: &str) {
    let anon: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = anon.get(format!("{}/api/jobs", c.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token");
    let r = anon.get(format!("{}/api/jobs", c.base)).header("Authorization", "Bearer nope").call().unwrap();
    assert_eq!(r.status().as_u16(), 401, "wrong token");
    let port = server.addr.port();
    let host = |h: &str| {
        format!("GET /api/jobs HTTP/1.1\r\nHost: {h}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n", c.auth)
    };
    assert_eq!(raw(server.addr, &host(&format!("evil.example:{port}"))), 403, "DNS rebinding");
    assert_eq!(raw(server.addr, &host(&format!("localhost:{port}"))), 200);
    let csrf = format!(
        "DELETE /api/jobs/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {}\r\nOrigin: http://evil.example\r\n\
         Sec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
        c.auth
    );
    assert_eq!(raw(server.addr, &csrf), 403, "cross-site DELETE");
    for bad in ["/api/jobs/zzzz", "/api/jobs/0123456789abcdef", "/api/jobs/..%2F..%2Fetc", "/api/jobs/%2e%2e/result"] {
        assert_eq!(c.get(bad, &[]).0, 404, "{bad}");
    }
    let (status, _, _) = c.post("/api/uploads?name=x.txt", b"hello, this is text, not an image");
    assert_eq!(status, 415);
    let (status, _, _) = c.post_json("/api/jobs", json!({"upload": "0123456789abcdef", "scale": 2}));
    assert_eq!(status, 404, "unknown upload");
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": "0123456789abcdef", "scale": 2, "path": "/etc"}));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(status == 422 && body["error"].as_str().unwrap().contains("unknown field"), "{status} {body}");
    let r = anon.get(format!("{}/", c.base)).header("Accept", "text/html").call().unwrap();
    assert_eq!(r.status().as_u16(), 401, "the page needs the token too");
    let r = anon.get(format!("{}/?token=t0ken", c.base)).config().max_redirects(0).build().call().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let page = anon.get(format!("{}/", c.base)).header("Cookie", cookie.split(';').next().unwrap()).call().unwrap();
    assert_eq!(page.status().as_u16(), 200, "the cookie opens the page");
    let csp = page.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && page.headers().get("access-control-allow-origin").is_none());
    assert_eq!(page.headers().get("x-content-type-options").unwrap(), "nosniff");
}

#[test]
fn limits_queue_and_cancel() {
    let dir = scratch("limits");
    let mut o = options(&dir, "tk");
    o.max_upload = 4000;
    o.queue = 1;
    o.max_pixels = 20_000;
    let server = Server::start(o).unwrap();
    let c = Client::new(&server, "tk");
    let big = std::fs::read(fixture("coffee16.png")).unwrap();
    assert_eq!(c.post("/api/uploads?name=big.png", &big).0, 413, "declared length over the limit");
    // Without a declared length (chunked), the count while streaming refuses it.
    let mut reader = std::io::Cursor::new(big);
    let r = c
        .agent
        .post(format!("{}/api/uploads?name=big.png", c.base))
        .header("Authorization", &c.auth)
        .send(ureq::SendBody::from_reader(&mut reader));
    assert_eq!(Client::finish(r).0, 413, "streamed past the limit");
    assert!(std::fs::read_dir(dir.join("uploads")).unwrap().next().is_none(), "nothing kept of refused uploads");
    // Small in bytes, too many pixels: 200x200 of one grey.
    let mut flat = Vec::new();
    let mut e = png::Encoder::new(&mut flat, 200, 200);
    e.set_color(png::ColorType::Grayscale);
    e.write_header().unwrap().write_image_data(&[7u8; 40000]).unwrap();
    let (status, _, body) = c.post("/api/uploads?name=flat.png", &flat);
    assert_eq!(status, 413, "{} bytes, 40000 pixels: {}", flat.len(), String::from_utf8_lossy(&body));
    // camera-gray.jpg: 96x96 = 9216 pixels, under the pixel limit.
    let u = c.upload(&fixture("camera-gray.jpg"));
    let up = u["id"].as_str().unwrap();
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": up, "scale": 90}));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let running: Value = serde_json::from_slice(&body).unwrap();
    let running = running["id"].as_str().unwrap().to_string();
    c.wait_state(&running, &["running"], 30);
    let queued = c.post_json("/api/jobs", json!({"upload": up, "scale": 2}));
    assert_eq!(queued.0, 202);
    let full = c.post_json("/api/jobs", json!({"upload": up, "scale": 3}));
    assert_eq!(full.0, 503, "the queue (1) is full");
    assert!(full.1.get("retry-after").is_some());
    // Cancel the running job: within a second it is cancelled and its partial file gone.
    let t = Instant::now();
    assert_eq!(c.delete(&format!("/api/jobs/{running}")).0, 202);
    c.wait_state(&running, &["cancelled"], 1);
    assert!(t.elapsed() < Duration::from_secs(1), "cancel took {:?}", t.elapsed());
    let left: Vec<_> =
        std::fs::read_dir(dir.join("jobs").join(&running)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| n == "job.json"), "partial files left: {left:?}");
    // The queued one then runs.
    let q: Value = serde_json::from_slice(&queued.2).unwrap();
    c.wait_state(q["id"].as_str().unwrap(), &["done"], 60);
    server.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The raw reply (status line, headers and body) to `request`.
fn raw_reply(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Records are durable or absent: a full disk (the test hook) gives 507 and leaves nothing;
/// leftovers of a crash are removed at startup; uploads can be deleted; the work directory is
/// the owner's only; error bodies are JSON and never name the server's paths.
#[test]
fn records_are_durable_and_failures_leave_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering::SeqCst;
    let dir = scratch("records");
    // What a crash leaves: an upload without its record, a job folder without its record, a
    // temporary record beside a good one.
    let (orphan, half_job) = (dir.join("uploads/00000000000000aa"), dir.join("jobs/00000000000000bb"));
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("input"), b"half an upload").unwrap();
    std::fs::create_dir_all(&half_job).unwrap();
    std::fs::write(half_job.join("job.json.tmp"), b"").unwrap();
    let o = options(&dir, "tk");
    let fail = o.fail_records.clone();
    let server = Server::start(o).unwrap();
    let c = Client::new(&server, "tk");
    assert!(!orphan.exists() && !half_job.exists(), "leftovers of a crash are removed at startup");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let jpeg = std::fs::read(fixture("camera-gray.jpg")).unwrap();
    fail.store(true, SeqCst);
    let (status, _, body) = c.post("/api/uploads?name=a.jpg", &jpeg);
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 507, "{text}");
    assert!(text.starts_with("{\"error\"") && !text.contains(dir.to_str().unwrap()), "{text}");
    assert!(std::fs::read_dir(dir.join("uploads")).unwrap().next().is_none(), "nothing kept of a failed upload");
    fail.store(false, SeqCst);
    let u = c.upload(&fixture("camera-gray.jpg"));
    let up = u["id"].as_str().unwrap();
    let input = dir.join("uploads").join(up).join("input");
    assert_eq!(std::fs::metadata(&input).unwrap().permissions().mode() & 0o777, 0o600);
    fail.store(true, SeqCst);
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": up, "scale": 2}));
    assert_eq!(status, 507, "{}", String::from_utf8_lossy(&body));
    assert!(std::fs::read_dir(dir.join("jobs")).unwrap().next().is_none(), "nothing kept of a failed job");
    assert_eq!(c.json("/api/jobs"), json!([]), "a job that was refused does not exist");
    fail.store(false, SeqCst);
    // A PNG signature over garbage: 415, the message without the server's paths.
    let (status, _, body) = c.post("/api/uploads?name=b.png", b"\x89PNG\r\n\x1a\nnot really a png at all");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(status == 415 && text.contains("work-dir") && !text.contains(dir.to_str().unwrap()), "{text}");
    // Too large a result for --max-output (8 GiB by default): 413 before it is queued.
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": up, "scale": 1000}));
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // An upload a queued job needs cannot be deleted; afterwards it can, once.
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": up, "scale": 2}));
    assert_eq!(status, 202);
    let job: Value = serde_json::from_slice(&body).unwrap();
    let done = c.wait_state(job["id"].as_str().unwrap(), &["done"], 60);
    assert_eq!((done["progress"].as_f64(), done["eta_s"].as_f64()), (Some(1.0), Some(0.0)));
    assert_eq!(c.delete(&format!("/api/uploads/{up}")).0, 204);
    assert!(!input.exists());
    assert_eq!(c.delete(&format!("/api/uploads/{up}")).0, 404);
    server.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every refusal is the documented JSON; Host is checked once and in absolute-form targets; a
/// Basic `Authorization` does not hide the cookie; non-ASCII names survive as `filename*`.
#[test]
fn refusals_are_json_and_hosts_are_checked_everywhere() {
    let dir = scratch("refusals");
    let server = Server::start(options(&dir, "tk")).unwrap();
    let c = Client::new(&server, "tk");
    let port = server.addr.port();
    let req = |line: &str, extra: &str| {
        format!(
            "{line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer tk\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    let cases = [
        (req("PUT /api/jobs", "Content-Length: 0\r\n"), 405),
        (req("GET /api/nothing", ""), 404),
        (req("GET /api/jobs/0123456789abcdef/dz/image_files/x/0_0.png", ""), 400),
        (
            req("DELETE /api/jobs/0123456789abcdef", "Origin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\n"),
            403,
        ),
        (req("GET /api/jobs", &format!("Host: 127.0.0.1:{port}\r\n")), 400),
        (req(&format!("GET http://evil.example:{port}/api/jobs"), ""), 403),
    ];
    for (request, want) in &cases {
        let reply = raw_reply(server.addr, request);
        let status: u16 = reply.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
        assert_eq!(status, *want, "{request}\n{reply}");
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert!(v["error"].is_string(), "not the JSON error: {reply}");
        assert!(reply.to_ascii_lowercase().contains("content-type: application/json"), "{reply}");
    }
    // A request head over 32 KiB: 431 from the parser (documented: without a JSON body).
    let huge = req("GET /api/jobs", &format!("X-Big: {}\r\n", "a".repeat(40 << 10)));
    assert!(raw_reply(server.addr, &huge).starts_with("HTTP/1.1 431"), "an oversized head");
    let absolute = req(&format!("GET http://localhost:{port}/api/jobs"), "");
    assert!(raw_reply(server.addr, &absolute).starts_with("HTTP/1.1 200"), "an allowed absolute-form target");
    let basic = format!(
        "GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic dXNlcjpwdw==\r\n\
         Cookie: gigascale_token=tk\r\nConnection: close\r\n\r\n"
    );
    assert!(raw_reply(server.addr, &basic).starts_with("HTTP/1.1 200"), "the cookie behind a Basic header");
    let jpeg = std::fs::read(fixture("camera-gray.jpg")).unwrap();
    let (status, _, body) = c.post("/api/uploads?name=Caf%C3%A9%20%E6%9D%B1%E4%BA%AC.jpg", &jpeg);
    assert_eq!(status, 201);
    let u: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(u["name"], "Café 東京");
    let (_, _, body) = c.post_json("/api/jobs", json!({"upload": u["id"], "scale": 2, "pyramid": false}));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    c.wait_state(&id, &["done"], 60);
    let (status, h, _) = c.get(&format!("/api/jobs/{id}/result"), &[]);
    let cd = h.get("content-disposition").unwrap().to_str().unwrap();
    assert!(status == 200 && cd.contains("filename*=UTF-8''Caf%C3%A9%20%E6%9D%B1%E4%BA%AC_2x_"), "{cd}");
    // No pyramid: no deep-zoom descriptor, and only the full-size level.
    assert_eq!(c.get(&format!("/api/jobs/{id}/dz/image.dzi"), &[]).0, 404);
    assert_eq!(c.get(&format!("/api/jobs/{id}/dz/image_files/0/0_0.png"), &[]).0, 404);
    server.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Downloads in the chosen format: JPEG at a quality and lossless WebP, each with its media
/// type and the same bytes as the command line's.
#[test]
fn results_come_in_the_chosen_format() {
    let dir = TempDir::new("formats");
    let server = Server::start(options(&dir, "t0ken")).unwrap();
    let c = Client::new(&server, "t0ken");
    let u = c.upload(&fixture("coffee.jpg"));
    for (format, extra, mime, cli_args) in [
        ("jpg", json!({"quality": 80}), "image/jpeg", &["--quality", "80"][..]),
        ("webp", json!({}), "image/webp", &[][..]),
        ("webp", json!({"quality": 75}), "image/webp", &["--quality", "75"][..]),
    ] {
        let mut req = json!({"upload": u["id"], "scale": 2, "format": format});
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, _, body) = c.post_json("/api/jobs", req);
        assert_eq!(status, 202, "{format}: {}", String::from_utf8_lossy(&body));
        let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
        c.wait_state(&id, &["done"], 60);
        let (status, headers, result) = c.get(&format!("/api/jobs/{id}/result"), &[]);
        assert_eq!((status, headers.get("content-type").unwrap().to_str().unwrap()), (200, mime), "{format}");
        let cli = dir.join(format!("cli.{format}"));
        ok(&gs(
            &[&["upscale", s(&fixture("coffee.jpg")), s(&cli), "--scale", "2", "--overwrite"][..], cli_args].concat()
        ));
        assert!(result == std::fs::read(&cli).unwrap(), "{format}: the server's result differs from the CLI's");
    }
    server.shutdown().unwrap();
}

/// `GET /api/jobs/{id}/faces`: the faces of the job's input, as `gigascale faces --json` finds
/// them; found once (kept beside the upload: a second call reads the kept file); 404 for an
/// unknown job.
#[test]
fn faces_of_a_jobs_input_are_the_clis() {
    let dir = TempDir::new("faces");
    let server = Server::start(options(&dir, "t0ken")).unwrap();
    let c = Client::new(&server, "t0ken");
    let u = c.upload(&fixture("astronaut-group.jpg"));
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": u["id"], "scale": 2}));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    c.wait_state(&id, &["done"], 60);
    let got = c.json(&format!("/api/jobs/{id}/faces"));
    let cli: Value = serde_json::from_str(&ok(&gs(&["faces", s(&fixture("astronaut-group.jpg")), "--json"]))).unwrap();
    assert_eq!((got["width"].as_u64(), got["height"].as_u64()), (Some(560), Some(360)));
    assert_eq!(got["faces"], cli["faces"]);
    assert_eq!(got["faces"].as_array().unwrap().len(), 3);
    let kept = dir.join("uploads").join(u["id"].as_str().unwrap()).join("faces.json");
    assert!(kept.exists(), "the faces are kept beside the upload");
    assert_eq!(c.json(&format!("/api/jobs/{id}/faces")), got);
    assert_eq!(c.get("/api/jobs/0123456789abcdef/faces", &[]).0, 404);
    server.shutdown().unwrap();
}

/// `serve --faces`: a job asking for `restore_faces` gets the CLI's `upscale --faces` bytes;
/// `GET /api/capabilities` says whether the server has a restorer, and a server without one
/// refuses the request (422) naming the option.
#[test]
fn restore_faces_toggle_gives_the_clis_bytes() {
    let Some((_, lib)) = crate::restore::runtime() else { return };
    let dir = TempDir::new("serve-restore");
    let model = fixture("restorers/gfpgan-tiny.onnx");
    let mut o = options(&dir, "t0ken");
    let mut f = gigascale::faces::RestoreOptions::new(&model);
    f.runtime = Some(lib.clone());
    o.faces = Some(f);
    let server = Server::start(o).unwrap();
    let c = Client::new(&server, "t0ken");
    assert_eq!(c.json("/api/capabilities")["restore_faces"], true);
    let u = c.upload(&fixture("astronaut-group.jpg"));
    let job = json!({"upload": u["id"], "scale": 2, "format": "png", "restore_faces": true});
    let (status, _, body) = c.post_json("/api/jobs", job);
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    c.wait_state(&id, &["done"], 120);
    let (status, _, result) = c.get(&format!("/api/jobs/{id}/result"), &[]);
    assert_eq!(status, 200);
    let cli = dir.join("cli.png");
    let input = fixture("astronaut-group.jpg");
    let args = ["upscale", s(&input), s(&cli), "--scale", "2", "--faces", s(&model), "--onnxruntime", s(&lib), "-q"];
    ok(&gs(&args));
    assert!(std::fs::read(&cli).unwrap() == result, "the server's restored result differs from the CLI's");
    server.shutdown().unwrap();

    let plain = Server::start(options(&dir.join("plain"), "t0ken")).unwrap();
    let c = Client::new(&plain, "t0ken");
    assert_eq!(c.json("/api/capabilities")["restore_faces"], false);
    let u = c.upload(&fixture("astronaut-group.jpg"));
    let (status, _, body) = c.post_json("/api/jobs", json!({"upload": u["id"], "scale": 2, "restore_faces": true}));
    assert_eq!(status, 422);
    assert!(String::from_utf8_lossy(&body).contains("--faces"), "{}", String::from_utf8_lossy(&body));
    plain.shutdown().unwrap();
}
