// Shared by the reader targets: write the input to a RAM-backed file, open it with gigascale's
// sniffing reader, and decode it into a store when it is small enough to be worth it.
use std::path::PathBuf;

pub fn decode(ext: &str, data: &[u8]) {
    let dir = PathBuf::from(if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" });
    let path = dir.join(format!("gigascale-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(mut src) = gigascale::source::open(&path, 16 << 20) {
        let info = src.info().clone();
        let pixels = info.width as u64 * info.height as u64;
        if pixels <= 1 << 20 && src.decode_memory() <= 64 << 20 {
            let mut store = gigascale::Store::create(&dir, info.row_bytes(), info.height as usize).unwrap();
            let never = || false;
            let mut progress = |_rows: u64| {};
            let mut w = gigascale::source::RowWriter::new(&mut store, &never, &mut progress);
            let _ = src.decode(&mut w);
        }
    }
    let _ = std::fs::remove_file(&path);
}
