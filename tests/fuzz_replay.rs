//! Replays tests/fuzz_regressions/*: every input goes through the sniffing reader and, if its
//! header is accepted and it is small, through decoding into the store. Nothing may panic; a
//! refusal must be a typed error that names the file.
use std::path::Path;

#[test]
fn fuzz_regressions_replay_cleanly() {
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
}
