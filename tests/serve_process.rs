//! `gigascale serve` as a process: SIGTERM shuts it down within 5 s (the event stream ends, the
//! running job is left resumable and resumes on the next start), and its peak memory (VmHWM)
//! stays within `--max-memory` + 32 MB while a job runs and deep-zoom tiles are served.
use crate::util::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `gigascale serve` process and a client for it.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) auth: String,
    pub(crate) agent: ureq::Agent,
}

impl Serve {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Serve {
        Serve::start_with(dir, extra, None)
    }
    /// As `start`, with the process's file-descriptor limit lowered to `nofile` (the shell's
    /// `ulimit -n`, then `exec`: the child is the server).
    pub(crate) fn start_with(dir: &Path, extra: &[&str], nofile: Option<u32>) -> Serve {
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("bash");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_gigascale")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_gigascale")),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--work-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let (base, token) = line.trim().split_once("/?token=").expect("the first line is the page's address");
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Serve { child, base: base.to_string(), auth: format!("Bearer {token}"), agent }
    }
    pub(crate) fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = self.agent.get(format!("{}{path}", self.base)).header("Authorization", &self.auth).call().unwrap();
        (r.status().as_u16(), r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap())
    }
    pub(crate) fn job(&self, id: &str) -> Value {
        serde_json::from_slice(&self.get(&format!("/api/jobs/{id}")).1).unwrap()
    }
    pub(crate) fn submit(&self, input: &Path, scale: f64) -> String {
        let mut r = self
            .agent
            .post(format!("{}/api/uploads?name=in.png", self.base))
            .header("Authorization", &self.auth)
            .send(&std::fs::read(input).unwrap()[..])
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let u: Value = r.body_mut().read_json().unwrap();
        let mut r = self
            .agent
            .post(format!("{}/api/jobs", self.base))
            .header("Authorization", &self.auth)
            .send_json(json!({"upload": u["id"], "scale": scale, "compression": "zstd"}))
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        r.body_mut().read_json::<Value>().unwrap()["id"].as_str().unwrap().to_string()
    }
    /// Sends SIGTERM and waits for the exit (at most 5 s): its status and the seconds it took.
    pub(crate) fn terminate(&mut self) -> (std::process::ExitStatus, f64) {
        let t = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, t.elapsed().as_secs_f64());
            }
            assert!(t.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub(crate) fn wait(&self, id: &str, state: &str, secs: u64) {
        let t = Instant::now();
        while self.job(id)["state"] != state {
            assert!(t.elapsed() < Duration::from_secs(secs), "job {id} never became {state}: {}", self.job(id));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A photo-like PNG of `w x h` in `dir`.
pub(crate) fn photo(dir: &Path, w: u32, h: u32) -> PathBuf {
    let p = dir.join("photo.png");
    photo_png(&p, w, h);
    p
}

#[test]
fn sigterm_stops_within_five_seconds_and_the_job_resumes() {
    let dir = scratch("term");
    let work = dir.join("work");
    let s = Serve::start(&work, &["--threads", "1"]);
    // 24000x18000 RGB on one thread: several seconds of work.
    let input = photo(&dir, 400, 300);
    let id = s.submit(&input, 60.0);
    s.wait(&id, "running", 30);
    // Long enough for a checkpoint (about one a second) to journal durable tiles.
    let t = Instant::now();
    while !std::fs::read_dir(work.join("jobs").join(&id))
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains("gigascale-journal"))
    {
        assert!(t.elapsed() < Duration::from_secs(20), "no journal");
        std::thread::sleep(Duration::from_millis(50));
    }
    let running = s.job(&id);
    assert_eq!(running["state"], "running", "the job should still be running");
    // The record itself follows the job (not only the event stream).
    assert!(running["progress"].as_f64().unwrap() > 0.0, "progress in GET /api/jobs/{{id}}: {running}");
    assert!(running["eta_s"].as_f64().is_some(), "an estimate in the record: {running}");
    let r = s.agent.get(format!("{}/api/events", s.base)).header("Authorization", &s.auth).call().unwrap();
    let stream = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = r.into_body().into_reader().read_to_string(&mut all);
        all
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut s = s;
    let (status, _) = s.terminate();
    assert!(status.success(), "exit status {status}");
    let events = stream.join().unwrap();
    assert!(events.starts_with("event: snapshot"), "the event stream ended with the server: {events:.200}");
    // Left resumable: its record says queued, its partial output and journal are kept.
    let rec: Value =
        serde_json::from_slice(&std::fs::read(work.join("jobs").join(&id).join("job.json")).unwrap()).unwrap();
    assert_eq!(rec["state"], "queued", "{rec}");
    let names: Vec<String> = std::fs::read_dir(work.join("jobs").join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.contains("gigascale-journal")), "{names:?}");
    // The next start takes it up again.
    let s = Serve::start(&work, &[]);
    s.wait(&id, "done", 120);
    assert_eq!(s.get(&format!("/api/jobs/{id}/result")).0, 200);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

pub(crate) fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn peak_memory_stays_within_the_budget_while_jobs_run_and_tiles_are_served() {
    let dir = scratch("mem");
    let input = photo(&dir, 2000, 1500);
    let s = Serve::start(&dir.join("work"), &["--max-memory", "256M"]);
    let first = s.submit(&input, 8.0);
    s.wait(&first, "done", 300);
    // A second job runs while the first one's tiles are fetched at every level.
    let second = s.submit(&input, 8.0);
    s.wait(&second, "running", 60);
    let mut tiles = 0;
    for level in (8..=14).rev() {
        for (x, y) in [(0, 0), (1, 1), (3, 2), (10, 7), (40, 30)] {
            let (status, _) = s.get(&format!("/api/jobs/{first}/dz/image_files/{level}/{x}_{y}.png"));
            tiles += (status == 200) as u32;
        }
    }
    assert!(tiles > 15, "{tiles} tiles served");
    s.wait(&second, "done", 300);
    let kb = vm_hwm_kb(s.child.id());
    eprintln!("serve peak RSS (VmHWM): {kb} KiB");
    assert!(kb * 1024 <= (256 + 32) << 20, "VmHWM {kb} KiB over 256M + 32M");
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}
