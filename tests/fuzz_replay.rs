//! Replays tests/fuzz_regressions/*: every reader input goes through the sniffing reader and,
//! if its header is accepted and it is small, through decoding into the store (nothing may
//! panic; a refusal must be a typed error that names the file); every writer round-trip input
//! (`tiff_roundtrip/`) is written compressed and uncompressed and must read back identically,
//! without leaving a worker thread behind (the one fuzz finding: rayon pool threads outlived the
//! job and LeakSanitizer reported their buffers).
use gigascale::sink::{TiffSink, TileSink};
use std::path::Path;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The process's threads once they are back to `before`, or after 2 s: a joined thread can
/// linger in `/proc/self/task` for a moment on a loaded machine, a leaked one stays.
fn threads_settled(before: usize) -> usize {
    let t0 = std::time::Instant::now();
    loop {
        let n = threads();
        if n == before || t0.elapsed() > std::time::Duration::from_secs(2) {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The fuzz target `tiff_roundtrip`, on the same case builder, with two workers.
fn roundtrip(data: &[u8], dir: &Path) {
    let Some((src, mut o, comp)) = gigascale::fuzzing::tiff_roundtrip_case(data) else { return };
    o.threads = 2;
    o.temp_dir = Some(dir.to_path_buf());
    let read = |o: &gigascale::Options, name: &str| {
        let path = dir.join(name);
        let mut sink = TiffSink::create(&path, o.compression, o.level).unwrap();
        let before = threads();
        gigascale::run(Box::new(src.clone()), &mut sink as &mut dyn TileSink, o, &mut |_| {}).unwrap();
        assert_eq!(threads_settled(before), before, "worker threads outlived the job");
        let mut d = tiff::decoder::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap();
        let img = d.read_image().unwrap();
        std::fs::remove_file(&path).unwrap();
        format!("{img:?}")
    };
    let plain = read(&o, "plain.tif");
    o.compression = comp;
    assert!(read(&o, "packed.tif") == plain, "{comp:?} round trip differs");
}

#[test]
fn fuzz_regressions_replay_cleanly() {
    // It counts the process's threads: other tests must not start or end any meanwhile.
    if !crate::util::alone("fuzz_replay::fuzz_regressions_replay_cleanly") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let tmp = std::env::temp_dir();
    let mut n = 0;
    for dir in ["jpeg", "png", "tiff"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = e.unwrap().path();
            n += 1;
            let r = std::panic::catch_unwind(|| -> gigascale::Result<()> {
                let mut src = gigascale::source::open(&path, 16 << 20)?;
                let info = src.info().clone();
                if info.width as u64 * info.height as u64 <= 1 << 20 {
                    let mut store = gigascale::Store::create(&tmp, info.row_bytes(), info.height as usize)?;
                    let never = || false;
                    let mut progress = |_: u64| {};
                    src.decode(&mut gigascale::source::RowWriter::new(&mut store, &never, &mut progress))?;
                }
                Ok(())
            });
            match r {
                Err(_) => panic!("{}: panicked", path.display()),
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&*path.file_name().unwrap().to_string_lossy()),
                        "{}: error does not name the file: {msg}",
                        path.display()
                    );
                    assert!(
                        !matches!(e, gigascale::Error::Interrupted { .. } | gigascale::Error::Usage(_)),
                        "{}: {msg}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(n >= 24, "only {n} regression inputs");
    let dir = tmp.join(format!("gigascale-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = 0;
    for e in std::fs::read_dir(root.join("tiff_roundtrip")).unwrap() {
        roundtrip(&std::fs::read(e.unwrap().path()).unwrap(), &dir);
        m += 1;
    }
    assert!(m >= 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
