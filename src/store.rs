//! The scanline store: the decoded source image in a temporary file, memory-mapped.
//!
//! Readers write rows into it; workers read windows of rows from it. The file lives in the
//! temp directory and is removed when the store is dropped (also on error and interruption).
//! Resident memory is bounded by releasing ranges of rows with `madvise(MADV_DONTNEED)` once
//! they are no longer needed: the data stays in the file (and the page cache, which the kernel
//! reclaims freely), only the process' resident set shrinks.
//!
//! This module makes every scratch mapping (the store here, and the coefficient buffer of
//! multi-scan JPEGs in `source/jpeg_coefficients.rs`) and releases their pages. The file gets all its
//! blocks before it is mapped (`posix_fallocate`), so a full disk is an error when the job
//! starts, never a SIGBUS in the middle of it.

use crate::error::{Error, Result};
use memmap2::{MmapMut, UncheckedAdvice};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A memory-mapped image of `height` rows of `row_bytes` bytes.
///
/// ```
/// # fn main() -> gigascale::Result<()> {
/// let mut store = gigascale::Store::create(&std::env::temp_dir(), 4, 3)?;
/// store.row_mut(1).copy_from_slice(&[1, 2, 3, 4]);
/// assert_eq!(store.row(1), &[1, 2, 3, 4]);
/// store.release_rows(0..2);
/// assert_eq!(store.row(1), &[1, 2, 3, 4]); // released rows read back from the file
/// # Ok(()) }
/// ```
pub struct Store {
    map: MmapMut,
    _file: File,
    path: PathBuf,
    row_bytes: usize,
    height: usize,
    /// The rows held: all (`0..height`), or a band of them (a unit of a distributed job).
    held: std::ops::Range<usize>,
}

/// Source rows of a tile's window, as slices of the store (or any other row provider): what
/// every backend reads.
pub trait Rows {
    /// Row `y` of the source (full width).
    fn row(&self, y: u32) -> &[u8];
}

impl Rows for Store {
    fn row(&self, y: u32) -> &[u8] {
        Store::row(self, y as usize)
    }
}

impl Store {
    /// Creates a store file in `dir` sized for `height` rows of `row_bytes` bytes.
    pub fn create(dir: &Path, row_bytes: usize, height: usize) -> Result<Store> {
        let len = (row_bytes as u64)
            .checked_mul(height as u64)
            .ok_or_else(|| Error::limit("scanline store", u64::MAX, u64::MAX, None))?;
        let (map, file, path) = scratch_mapping(dir, len, "store", "the scanline store")?;
        Ok(Store { map, _file: file, path, row_bytes, height, held: 0..height })
    }

    /// A store of an image of `height` rows that holds only rows `rows` (what one unit of a
    /// distributed job reads): the file is sized for those rows alone.
    pub fn create_rows(dir: &Path, row_bytes: usize, height: usize, rows: std::ops::Range<usize>) -> Result<Store> {
        let rows = rows.start.min(height)..rows.end.min(height);
        let mut s = Store::create(dir, row_bytes, rows.len())?;
        (s.height, s.held) = (height, rows);
        Ok(s)
    }

    /// The rows this store holds (all of the image's unless made by [`Store::create_rows`]).
    pub fn rows(&self) -> std::ops::Range<usize> {
        self.held.clone()
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }
    /// Number of rows of the image (see [`Store::rows`] for those held).
    pub fn height(&self) -> usize {
        self.height
    }
    /// Where the (unlinked) backing file was created, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset of row `y` (which must be held).
    fn offset(&self, y: usize) -> usize {
        debug_assert!(self.held.contains(&y) || y == self.held.end, "row {y} outside {:?}", self.held);
        (y - self.held.start) * self.row_bytes
    }
    /// Row `y`.
    pub fn row(&self, y: usize) -> &[u8] {
        let o = self.offset(y);
        &self.map[o..o + self.row_bytes]
    }
    /// Row `y`, writable.
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let o = self.offset(y);
        &mut self.map[o..o + self.row_bytes]
    }
    /// Rows `rows` as one writable slice (rows are contiguous).
    pub fn rows_mut(&mut self, rows: std::ops::Range<usize>) -> &mut [u8] {
        let (a, b) = (self.offset(rows.start), self.offset(rows.end));
        &mut self.map[a..b]
    }

    /// Drops rows `rows` from the resident set. Their contents stay in the file and are read
    /// back transparently if touched again.
    pub fn release_rows(&self, rows: std::ops::Range<usize>) {
        let (a, b) = (rows.start.max(self.held.start), rows.end.min(self.held.end));
        if a < b {
            release_bytes(&self.map, self.offset(a), self.offset(b));
        }
    }

    /// Maps bytes `bytes` of each of rows `rows` (a tile's part of them) into the resident
    /// set, writable, without changing them (`MADV_POPULATE_WRITE`, in parallel on the current
    /// thread pool): placing the tile's samples there then only copies. Where the kernel lacks
    /// it (before Linux 5.14) this does nothing and the writes fault the pages in as before.
    pub fn prefault(&self, rows: std::ops::Range<usize>, bytes: std::ops::Range<usize>) {
        let (a, b) = (rows.start.max(self.held.start), rows.end.min(self.held.end));
        let bytes = bytes.start.min(self.row_bytes)..bytes.end.min(self.row_bytes);
        if a >= b || bytes.is_empty() {
            return;
        }
        let ranges: Vec<(usize, usize)> = match bytes.len() == self.row_bytes {
            true => vec![(self.offset(a), self.offset(b))],
            false => (a..b).map(|y| (self.offset(y) + bytes.start, self.offset(y) + bytes.end)).collect(),
        };
        populate(&self.map, ranges);
    }

    /// Releases everything (after decoding, before the compute phase).
    pub fn release_all(&self) {
        self.release_rows(self.held.clone());
    }
}

/// The directory `path` lies in (`.` for a bare file name): where its temporary and scratch
/// files go.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new scratch file of `len` bytes in `dir`, unlinked at once (it vanishes with the last
/// handle, even on SIGKILL), its blocks reserved (see [`reserve`]), and mapped shared and
/// writable, zero-filled. `what` names it in messages. Returns the map, the file handle to keep
/// alive with it, and the path it was created under (for messages only).
pub(crate) fn scratch_mapping(dir: &Path, len: u64, tag: &str, what: &str) -> Result<(MmapMut, File, PathBuf)> {
    let (file, path) = create_temp(dir, tag)?;
    let _ = std::fs::remove_file(&path);
    reserve(&file, dir, len.max(1), what)?;
    // SAFETY: the file was just created by us with a unique name and unlinked, so no other
    // process can map or truncate it; its length is fixed for the map's lifetime.
    let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| Error::io(&path, e))?;
    Ok((map, file, path))
}

/// Drops the whole pages within bytes `start..end` of `map` from the resident set.
pub(crate) fn release_bytes(map: &MmapMut, start: usize, end: usize) {
    let page = page_size();
    let start = start.div_ceil(page) * page;
    let end = end.min(map.len()) / page * page;
    if end > start {
        // SAFETY: our mappings are MAP_SHARED and file-backed, so MADV_DONTNEED discards only
        // the page-table entries: the bytes live on in the page cache and the file, and the
        // next access faults them back in unchanged. No reference into the range can observe
        // different data, so this is sound even while other threads (or libjpeg) read it.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
    }
}

/// Byte ranges `ranges` of `map` made resident and writable, in pieces of at most 4 MiB on
/// the current thread pool (one `madvise` faults its pages in one after another).
fn populate(map: &MmapMut, ranges: Vec<(usize, usize)>) {
    #[cfg(target_os = "linux")]
    {
        use rayon::prelude::*;
        const PIECE: usize = 4 << 20;
        let pieces = ranges.into_iter().flat_map(|(a, b)| (a..b).step_by(PIECE).map(move |s| (s, PIECE.min(b - s))));
        pieces.collect::<Vec<_>>().into_par_iter().for_each(|(s, len)| {
            let _ = map.advise_range(memmap2::Advice::PopulateWrite, s, len);
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (map, ranges);
}

/// Makes every heap block of 1 MiB or more its own mapping, returned to the kernel when freed
/// (glibc otherwise raises this threshold as large blocks are freed, and keeps freed blocks
/// per thread: the neural stage's tensors, made on the pool's threads in turn, would then be
/// held twice); and keeps the heap in at most two arenas (with one per thread, smaller freed
/// blocks stayed resident in each: Real-CUGAN x2 on 16 threads peaked 21 MB over its budget of
/// 64 MB, 1 MB over with two). Process-wide; called once by the neural stage.
pub(crate) fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes an allocator tuning parameter; it has no memory-safety
        // preconditions and is thread-safe in glibc.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, 2);
        });
    }
}

/// The kernel's page size (the unit `madvise` works in).
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant; it has no memory-safety preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            p as usize
        } else {
            4096
        }
    })
}

/// Gives the store file its full length with every block allocated, so that writing through
/// the mapping can never hit a full disk (which would kill the process with SIGBUS instead of
/// returning an error). Where the file system cannot preallocate, the free space reported by
/// `statvfs` is checked instead, with a margin.
fn reserve(file: &File, dir: &Path, len: u64, what: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let full = |detail: String| {
        Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "{what} needs {len} bytes ({}) in this directory: {detail}; free space or choose another --temp-dir",
                    crate::limits::format_size(len)
                ),
            ),
        )
    };
    let Ok(off_len) = libc::off_t::try_from(len) else {
        return Err(full("larger than a file can be".into()));
    };
    // SAFETY: posix_fallocate works on the open descriptor of a file we own; it reads no
    // memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, off_len) };
    match rc {
        0 => Ok(()),
        libc::ENOSPC | libc::EFBIG => Err(full(std::io::Error::from_raw_os_error(rc).to_string())),
        libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => {
            // No preallocation here (e.g. some network file systems): check the free space,
            // keeping 1 % of the store (at least 16 MiB) as a margin, then make a sparse file.
            let avail = free_bytes(dir).unwrap_or(u64::MAX);
            let need = len.saturating_add((len / 100).max(16 << 20));
            if avail < need {
                return Err(full(format!("only {avail} bytes are free")));
            }
            file.set_len(len).map_err(|e| Error::io(dir, e))
        }
        other => Err(Error::io(dir, std::io::Error::from_raw_os_error(other))),
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero bytes are a valid `statvfs` (a struct of integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid, exclusively borrowed out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Creates a new uniquely named file in `dir` (`.gigascale-<pid>-<n>-<what>`).
pub(crate) fn create_temp(dir: &Path, what: &str) -> Result<(File, PathBuf)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    for _ in 0..100 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".gigascale-{}-{n}-{what}.tmp", std::process::id()));
        match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::io(
                    dir,
                    std::io::Error::new(e.kind(), format!("cannot create a file in this directory ({e})")),
                ))
            }
        }
    }
    Err(Error::io(dir, std::io::Error::other("could not create a unique temporary file")))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::Store;

    /// Minor page faults of the calling thread so far (`/proc/thread-self/stat`, field 10).
    fn thread_faults() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; the fields after it are plain.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(7).unwrap().parse().unwrap()
    }

    #[test]
    fn prefaulted_rows_are_written_without_faults_and_keep_their_bytes() {
        let (row, rows) = (4096 * 4, 1024);
        let mut s = Store::create(&std::env::temp_dir(), row, rows).unwrap();
        let fill = |s: &mut Store, range: std::ops::Range<usize>| {
            let before = thread_faults();
            for y in range {
                s.row_mut(y).fill(y as u8 | 1);
            }
            thread_faults() - before
        };
        let fresh = fill(&mut s, 0..rows / 2);
        s.prefault(rows / 2..rows, 0..row);
        // Mapping rows in changes none of them: the written half keeps its bytes, the rest
        // stays zero; so does mapping part of each row.
        s.prefault(0..rows, 0..row);
        s.prefault(0..rows, 100..row - 5000);
        assert!(s.row(7).iter().all(|&b| b == 7) && s.row(rows - 1).iter().all(|&b| b == 0));
        let mapped = fill(&mut s, rows / 2..rows);
        assert!(fresh > 0 && mapped * 20 < fresh, "{fresh} faults writing fresh rows, {mapped} prefaulted");
        assert!(s.row(rows - 1).iter().all(|&b| b == (rows - 1) as u8 | 1));
    }
}
