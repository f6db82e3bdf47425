//! One shard of the `sharding_indexed` codec, streamed: inner chunks are appended to a
//! temporary file as they arrive (in row-major chunk order, so the bytes are deterministic),
//! then the index (`(offset, length)` as little-endian u64 per chunk, `u64::MAX` twice for a
//! chunk outside the image) and its crc32c are appended, the file is synced and renamed over
//! the shard's key. A reader never sees a partial shard; memory is the index alone.
//!
//! Also the inner chunks' encoding (channels first, zstd) and the temporary names, which
//! say which host and process wrote them so that a rerun can remove those of dead processes.

use crate::error::{Error, Result};
use crate::pixel::Layout;
use crate::plan::TileJob;
use crate::sink::TileEncoder;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The marker in every temporary name.
const TEMP_TAG: &str = ".gigascale-";

/// This machine's name (for temporary names; `localhost` if it has none).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a valid, writable buffer of the length passed; gethostname writes at
    // most that many bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).replace(['/', '-', '.'], "_");
    if rc != 0 || name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// A temporary name beside `dest`, unique to this process and call:
/// `.{name}.gigascale-{host}-{pid}-{n}.tmp`.
pub(crate) fn temp_name(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = dest.file_name().map_or("shard".into(), |f| f.to_string_lossy().into_owned());
    let tmp = format!(".{name}{TEMP_TAG}{}-{}-{n}.tmp", hostname(), std::process::id());
    dest.with_file_name(tmp)
}

/// Whether process `pid` exists on this machine.
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the temporary files in `dir` (not below it) and returns them: all of them when
/// `all`, else only those written on this host by a process that no longer exists.
pub(crate) fn sweep_temps(dir: &Path, all: bool) -> Result<Vec<PathBuf>> {
    let host = hostname();
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(at) = name.find(TEMP_TAG).filter(|_| name.starts_with('.') && name.ends_with(".tmp")) else {
            continue;
        };
        let who: Vec<&str> = name[at + TEMP_TAG.len()..].trim_end_matches(".tmp").split('-').collect();
        let dead = match who.as_slice() {
            [h, pid, _] => *h == host && pid.parse().is_ok_and(|p| !alive(p)),
            _ => false,
        };
        if all || dead {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    Ok(removed)
}

/// Puts a finished shard (the local file it is given) where it belongs instead of renaming it
/// to its `dest`: an upload to a bucket's object, say.
pub(crate) type Placer = Box<dyn FnOnce(&Path) -> Result<()> + Send>;

/// A shard being written.
pub(crate) struct ShardFile {
    tmp: PathBuf,
    dest: PathBuf,
    /// Where the finished shard goes instead of `dest`.
    place: Option<Placer>,
    w: Option<BufWriter<File>>,
    pos: u64,
    /// `(offset, length)` per inner chunk, row-major; `u64::MAX` for chunks never added.
    index: Vec<u64>,
}

impl ShardFile {
    /// Starts shard `dest` of `chunks` inner chunks (creating its directory); with `place`,
    /// `dest` only says where to stage it, and `place` puts the finished shard in place.
    pub(crate) fn create(dest: &Path, chunks: usize, place: Option<Placer>) -> Result<ShardFile> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = temp_name(dest);
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(ShardFile {
            tmp,
            dest: dest.to_path_buf(),
            place,
            w: Some(BufWriter::with_capacity(1 << 20, f)),
            pos: 0,
            index: vec![u64::MAX; 2 * chunks],
        })
    }

    /// Appends inner chunk `i`'s encoded bytes.
    pub(crate) fn add(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        if 2 * i + 1 >= self.index.len() || self.index[2 * i] != u64::MAX {
            return Err(Error::Internal(format!(
                "{}: inner chunk {i} out of range or written twice",
                self.dest.display()
            )));
        }
        let w = self.w.as_mut().ok_or_else(|| Error::Internal("shard already finished".into()))?;
        w.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.index[2 * i] = self.pos;
        self.index[2 * i + 1] = bytes.len() as u64;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Pushes what is buffered to the file (for the crash tests: a killed unit then leaves a
    /// partial temporary file, as a real crash would).
    pub(crate) fn flush(&mut self) -> Result<()> {
        match self.w.as_mut() {
            Some(w) => w.flush().map_err(|e| Error::io(&self.tmp, e)),
            None => Ok(()),
        }
    }

    /// Appends the index and its checksum, syncs, and renames the shard into place; returns
    /// its size in bytes.
    pub(crate) fn finish(mut self) -> Result<u64> {
        let mut w = self.w.take().ok_or_else(|| Error::Internal("shard already finished".into()))?;
        let index: Vec<u8> = self.index.iter().flat_map(|v| v.to_le_bytes()).collect();
        let crc = crc32c::crc32c(&index);
        let r = w
            .write_all(&index)
            .and_then(|()| w.write_all(&crc.to_le_bytes()))
            .and_then(|()| w.flush())
            .and_then(|()| w.get_ref().sync_data());
        r.map_err(|e| Error::io(&self.tmp, e))?;
        drop(w);
        match self.place.take() {
            Some(place) => {
                let r = place(&self.tmp);
                let _ = std::fs::remove_file(&self.tmp);
                r?
            }
            None => std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?,
        }
        Ok(self.pos + index.len() as u64 + 4)
    }
}

impl Drop for ShardFile {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A zstd compressor at `level` (no checksum), kept per thread: contexts are costly to make.
pub(crate) fn compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    zstd::bulk::Compressor::new(level).map_err(|e| Error::Internal(format!("zstd: {e}")))
}

/// Copies channel `ch` of `n` interleaved pixels of `c` samples of `S` bytes into `dst`.
fn deinterleave<const S: usize>(src: &[u8], c: usize, ch: usize, dst: &mut [u8]) {
    for (d, px) in dst.chunks_exact_mut(S).zip(src.chunks_exact(c * S)) {
        d.copy_from_slice(&px[ch * S..ch * S + S]);
    }
}

/// Encodes the `w x h` valid pixels of `src` (interleaved, rows of `stride` bytes) as one
/// `chunk x chunk` inner chunk: channels first (`c, y, x`), samples little-endian, zeros
/// outside the image, zstd without checksum. `planar` is scratch.
pub(crate) fn encode_chunk(
    src: &[u8],
    stride: usize,
    (w, h): (usize, usize),
    chunk: usize,
    layout: Layout,
    zstd: &mut zstd::bulk::Compressor<'static>,
    planar: &mut Vec<u8>,
) -> Result<Vec<u8>> {
    let c = layout.channels.count();
    let sb = layout.bytes_per_pixel() / c;
    planar.clear();
    planar.resize(c * chunk * chunk * sb, 0);
    let plane = chunk * chunk * sb;
    for y in 0..h {
        let row = &src[y * stride..y * stride + w * c * sb];
        for ch in 0..c {
            let at = ch * plane + y * chunk * sb;
            let dst = &mut planar[at..at + w * sb];
            match sb {
                1 => deinterleave::<1>(row, c, ch, dst),
                _ => deinterleave::<2>(row, c, ch, dst),
            }
        }
    }
    zstd.compress(planar).map_err(|e| Error::Internal(format!("zstd: {e}")))
}

/// The workers' encoder of level-0 tiles: each tile becomes one inner chunk.
pub(crate) struct ChunkEncoder {
    pub layout: Layout,
    pub tile: usize,
    pub zstd: zstd::bulk::Compressor<'static>,
    pub planar: Vec<u8>,
}

impl TileEncoder for ChunkEncoder {
    fn encode(&mut self, job: &TileJob, raw: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
        let bpp = self.layout.bytes_per_pixel();
        let size = (job.out.w as usize, job.out.h as usize);
        *out = encode_chunk(raw, self.tile * bpp, size, self.tile, self.layout, &mut self.zstd, &mut self.planar)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::{Channels, Depth};

    #[test]
    fn chunks_are_channels_first_and_padded_with_zeros() {
        let layout = Layout::new(Channels::Rgb, Depth::U8);
        // 2x1 valid pixels in a 16x16 chunk: (1,2,3) (4,5,6).
        let src = [1u8, 2, 3, 4, 5, 6];
        let mut planar = Vec::new();
        let z = encode_chunk(&src, 6, (2, 1), 16, layout, &mut compressor(3).unwrap(), &mut planar).unwrap();
        let raw = zstd::bulk::decompress(&z, 3 * 256).unwrap();
        assert_eq!(raw.len(), 3 * 256);
        assert_eq!((raw[0], raw[1], raw[2]), (1, 4, 0));
        assert_eq!((raw[256], raw[257]), (2, 5));
        assert_eq!((raw[512], raw[513]), (3, 6));
        assert_eq!(raw.iter().map(|&b| b as u32).sum::<u32>(), 21);
    }

    #[test]
    fn a_shard_ends_with_its_index_and_checksum_and_appears_only_when_finished() {
        let dir = std::env::temp_dir().join(format!("gigascale-shard-{}", std::process::id()));
        let dest = dir.join("0/c/0/0/0");
        let mut s = ShardFile::create(&dest, 3, None).unwrap();
        s.add(0, b"abc").unwrap();
        s.add(2, b"de").unwrap();
        assert!(s.add(2, b"x").is_err(), "a chunk written twice");
        assert!(!dest.exists());
        assert_eq!(s.finish().unwrap(), 5 + 48 + 4);
        let b = std::fs::read(&dest).unwrap();
        assert_eq!(&b[..5], b"abcde");
        let idx: Vec<u64> = b[5..53].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(idx, [0, 3, u64::MAX, u64::MAX, 3, 2]);
        assert_eq!(u32::from_le_bytes(b[53..].try_into().unwrap()), crc32c::crc32c(&b[5..53]));
        // An unfinished shard leaves nothing; a dead process's temporary file is swept.
        drop(ShardFile::create(&dir.join("0/c/0/0/1"), 1, None).unwrap());
        let stale = dir.join(format!("0/c/0/0/.2{TEMP_TAG}{}-999999999-0.tmp", hostname()));
        std::fs::write(&stale, b"partial").unwrap();
        let names = |d: &Path| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
        assert_eq!(names(&dir.join("0/c/0/0")).len(), 2);
        assert_eq!(sweep_temps(&dir.join("0/c/0/0"), false).unwrap(), vec![stale]);
        assert_eq!(names(&dir.join("0/c/0/0")), vec![std::ffi::OsString::from("0")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
