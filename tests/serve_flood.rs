//! `gigascale serve` under hostile connections (a process with a lowered file-descriptor
//! limit): a flood of half-sent requests does not starve the token holder, lose an accepted
//! job or push memory over the budget; half-sent headers and idle kept-alive connections are
//! closed; a trickled upload is cut off; SIGTERM exits within 5 s whatever clients hold.
use crate::serve_process::{photo, vm_hwm_kb, Serve};
use crate::util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The server's address (`host:port`) from its base URL.
fn address(s: &Serve) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// A connection that has sent part of a request's headers and then nothing.
fn half_sent(addr: &str) -> Option<TcpStream> {
    let mut c = TcpStream::connect(addr).ok()?;
    c.write_all(format!("GET /api/jobs HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes()).ok()?;
    Some(c)
}

/// Seconds until the server closes `c` (EOF or reset), at most `limit`.
fn closed_after(c: &mut TcpStream, limit: Duration) -> Option<f64> {
    let t = Instant::now();
    c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while t.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => return Some(t.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(t.elapsed().as_secs_f64()),
        }
    }
    None
}

#[test]
fn a_flood_of_half_sent_requests_starves_nobody_and_loses_nothing() {
    let dir = scratch("flood");
    let input = photo(&dir, 300, 200);
    // 256 descriptors: the server allows itself half as connections.
    let s = Serve::start_with(&dir.join("work"), &["--max-memory", "256M"], Some(256));
    let addr = address(&s);
    let mut flood: Vec<TcpStream> = (0..600).filter_map(|_| half_sent(&addr)).collect();
    assert!(flood.len() > 300, "{} connections opened", flood.len());
    // The token holder still gets answers, and an accepted job is kept and finishes.
    for _ in 0..5 {
        assert_eq!(s.get("/api/jobs").0, 200, "an authenticated request during the flood");
    }
    let id = s.submit(&input, 4.0);
    flood.extend((0..300).filter_map(|_| half_sent(&addr)));
    s.wait(&id, "done", 120);
    assert_eq!(s.get(&format!("/api/jobs/{id}/result")).0, 200);
    assert_eq!(s.get(&format!("/api/jobs/{id}/dz/image_files/0/0_0.png")).0, 200);
    // A half-sent request is closed after the header deadline (10 s), whether or not it was
    // already closed to make room.
    let last = flood.last_mut().unwrap();
    let t = closed_after(last, Duration::from_secs(15));
    assert!(t.is_some(), "a half-sent request still open 15 s later");
    let kb = vm_hwm_kb(s.child.id());
    eprintln!("flood: serve peak RSS (VmHWM) {kb} KiB");
    assert!(kb * 1024 <= (256 + 32) << 20, "VmHWM {kb} KiB over 256M + 32M");
    // The job's record survives a restart.
    drop(flood);
    drop(s);
    let s = Serve::start(&dir.join("work"), &[]);
    assert_eq!(s.job(&id)["state"], "done");
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn idle_and_trickling_clients_are_cut_off() {
    let dir = scratch("idle");
    let s = Serve::start(&dir.join("work"), &[]);
    let addr = address(&s);
    // An idle kept-alive connection: closed within the header deadline (10 s) after its reply.
    let mut c = TcpStream::connect(&addr).unwrap();
    let req = format!("GET /api/jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\r\n", s.auth);
    c.write_all(req.as_bytes()).unwrap();
    let t = closed_after(&mut c, Duration::from_secs(16)).expect("an idle kept-alive connection still open");
    assert!(t >= 5.0, "closed too early ({t:.1} s): the reply should have kept it open");
    // An upload trickling a byte every two seconds: 408 once under 8 KiB/s after 10 s.
    let mut u = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /api/uploads?name=x.png HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Length: 100000\r\n\r\n",
        s.auth
    );
    u.write_all(head.as_bytes()).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let (t, mut reply) = (Instant::now(), Vec::new());
    while t.elapsed() < Duration::from_secs(20) {
        let _ = u.write_all(b"\x89");
        let mut buf = [0u8; 1024];
        match u.read(&mut buf) {
            Ok(n) if n > 0 => {
                reply.extend_from_slice(&buf[..n]);
                break;
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "a trickled upload: {reply:?} after {:?}", t.elapsed());
    assert!(std::fs::read_dir(dir.join("work/uploads")).unwrap().next().is_none(), "nothing kept");
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_exits_within_five_seconds_whatever_clients_hold() {
    let dir = scratch("term-open");
    let s = Serve::start(&dir.join("work"), &[]);
    let addr = address(&s);
    let _half = half_sent(&addr).unwrap();
    // An authenticated upload that has sent its headers and a few bytes of a large body.
    let mut upload = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /api/uploads?name=x.png HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Length: 1000000\r\n\r\nPNG",
        s.auth
    );
    upload.write_all(head.as_bytes()).unwrap();
    let idle = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut s = s;
    let (status, seconds) = s.terminate();
    eprintln!("SIGTERM with open clients: exited in {seconds:.2} s");
    assert!(status.success(), "exit status {status}");
    drop((upload, idle));
    std::fs::remove_dir_all(&dir).unwrap();
}
