//! Resource limits: what a job may allocate and accept ([`Limits`], as image-rs's `Limits`),
//! the size notation users write ([`parse_size`], [`format_size`]), and the default memory
//! budget from the machine or its container ([`default_budget`]).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Default [`Limits::max_pixels`]: 4 gigapixels of input (a 65536x65536 image), far above any
/// photo.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 32;

/// What a job may allocate and accept. Every capacity of a job (threads, ring slots, GPU
/// slots, a model's tile) is derived from these numbers before anything starts.
///
/// ```
/// use gigascale::Limits;
/// let l = Limits::default().with_max_memory("64M")?;
/// assert_eq!(l.max_memory, 64 << 20);
/// assert!(l.check_pixels(2000, 3000).is_ok());
/// let mut small = l;
/// small.max_pixels = 1000;
/// assert!(small.check_pixels(2000, 3000).is_err());
/// # Ok::<(), gigascale::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes for everything the job allocates (`--max-memory`); see [`default_budget`].
    pub max_memory: u64,
    /// Bytes the job may allocate on the GPU (`--gpu-memory`); `None`: the adapter's limits.
    pub gpu_memory: Option<u64>,
    /// Input pixels accepted (`--max-pixels`); 0: no limit.
    pub max_pixels: u64,
}

impl Default for Limits {
    /// The default budget of this machine, the adapter's own GPU limits, 4 gigapixels.
    fn default() -> Limits {
        Limits { max_memory: default_budget(), gpu_memory: None, max_pixels: DEFAULT_MAX_PIXELS }
    }
}

impl Limits {
    /// These limits with `max_memory` parsed from the size notation (`64M`).
    pub fn with_max_memory(mut self, size: &str) -> Result<Limits> {
        self.max_memory = parse_size(size)?;
        Ok(self)
    }

    /// Checks the limits on their own.
    pub fn validate(&self) -> Result<()> {
        if self.gpu_memory.is_some_and(|g| g < (1 << 20)) {
            return Err(Error::usage("--gpu-memory must be at least 1M"));
        }
        if self.max_memory < (1 << 20) {
            return Err(Error::usage("--max-memory must be at least 1M"));
        }
        Ok(())
    }

    /// Refuses an input of `width x height` over [`Limits::max_pixels`].
    pub fn check_pixels(&self, width: u32, height: u32) -> Result<()> {
        let pixels = width as u64 * height as u64;
        if self.max_pixels > 0 && pixels > self.max_pixels {
            return Err(Error::limit_pixels(
                format!("{width}x{height} input"),
                pixels,
                self.max_pixels,
                Some("raise --max-pixels (0 = no limit) if the image is genuine".into()),
            ));
        }
        Ok(())
    }
}

/// Parses `512K`, `64M`, `2G`, `1T`, `12345` (bytes) or with a trailing `B`/`iB`
/// (`64MB`, `64MiB`). Units are binary (K = 1024).
///
/// ```
/// use gigascale::limits::parse_size;
/// assert_eq!(parse_size("64M").unwrap(), 64 << 20);
/// assert_eq!(parse_size("512k").unwrap(), 512 << 10);
/// assert_eq!(parse_size("1000").unwrap(), 1000);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || {
        Error::usage(format!("invalid size '{s}': expected a number with an optional K, M, G or T suffix, e.g. 64M"))
    };
    let lower = t.to_ascii_lowercase();
    let lower = lower.strip_suffix("ib").or_else(|| lower.strip_suffix('b')).unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1u64 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1u64 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1u64 << 40),
        Some(_) => (lower, 1u64),
        None => return Err(bad()),
    };
    let num = num.trim();
    if num.is_empty() {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    let bytes = v * mult as f64;
    if bytes > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Formats a byte count the way users write it (`64.0 MiB`).
pub fn format_size(bytes: u64) -> String {
    let (v, unit) = scaled(bytes);
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// As [`format_size`], but the figure rounded up (`64.1 MiB` for 64.01 MiB): a budget written
/// as shown is enough. For the "at least" of a refusal.
pub(crate) fn format_size_up(bytes: u64) -> String {
    let (v, unit) = scaled(bytes);
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{:.1} {unit}", (v * 10.0).ceil() / 10.0)
    }
}

/// `bytes` in the largest binary unit it reaches.
fn scaled(bytes: u64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    (v, UNITS[u])
}

/// This process's resident memory in bytes (Linux `/proc/self/status`, `VmRSS`), if known.
/// A model's pass on a GPU leaves it out of its budget: the drivers' code, pipelines and
/// mapped staging are resident memory that no plan itemises.
pub(crate) fn resident_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Physical memory of this machine in bytes (Linux `/proc/meminfo`), if known.
pub fn physical_memory() -> Option<u64> {
    meminfo(Path::new("/"))
}

fn meminfo(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Where the memory the default budget is a quarter of comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemorySource {
    /// The machine's physical memory (`/proc/meminfo`).
    Physical,
    /// A cgroup v2 `memory.max` (the file named), the process's own cgroup or an ancestor.
    CgroupV2(PathBuf),
    /// A cgroup v1 `memory.limit_in_bytes` (the file named).
    CgroupV1(PathBuf),
    /// Nothing could be read: 4 GiB assumed.
    Assumed,
}

/// The default budget and what it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefaultBudget {
    /// The budget in bytes.
    pub bytes: u64,
    /// The memory it is a quarter of (the smallest limit found).
    pub memory: u64,
    /// Where `memory` comes from.
    pub source: MemorySource,
}

impl std::fmt::Display for DefaultBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = format_size(self.memory);
        match &self.source {
            MemorySource::Physical => write!(f, "default: a quarter of the physical memory ({m})")?,
            MemorySource::CgroupV2(p) | MemorySource::CgroupV1(p) => {
                write!(f, "default: a quarter of the cgroup limit {m} in {}", p.display())?
            }
            MemorySource::Assumed => write!(f, "default: memory size unknown, {m} assumed")?,
        }
        if self.bytes != self.memory / 4 {
            write!(f, ", kept within 256 MiB..4 GiB and half the limit")?;
        }
        Ok(())
    }
}

/// The default budget: a quarter of the smallest of physical memory and the memory limits of
/// the process's cgroup (v2 `memory.max` or v1 `memory.limit_in_bytes`, the cgroup's own and
/// its ancestors'), clamped to [256 MiB, 4 GiB] — and never more than half the limit, so that a
/// container smaller than 512 MiB is not overcommitted by the clamp.
pub fn default_budget() -> u64 {
    default_budget_at(Path::new("/")).bytes
}

/// [`default_budget`] with where it came from, reading `/proc` and `/sys/fs/cgroup` under
/// `root` (`/` in production; a directory tree of the same shape in tests).
pub fn default_budget_at(root: &Path) -> DefaultBudget {
    let mut best: Option<(u64, MemorySource)> = meminfo(root).map(|m| (m, MemorySource::Physical));
    for (limit, source) in cgroup_limits(root) {
        if best.as_ref().is_none_or(|b| limit < b.0) {
            best = Some((limit, source));
        }
    }
    let (memory, source) = best.unwrap_or((4 << 30, MemorySource::Assumed));
    let bytes = (memory / 4).clamp(256 << 20, 4 << 30).min((memory / 2).max(1 << 20));
    DefaultBudget { bytes, memory, source }
}

/// Limits found along the process's cgroup paths (v2 and v1), with the file each came from.
fn cgroup_limits(root: &Path) -> Vec<(u64, MemorySource)> {
    let Ok(text) = std::fs::read_to_string(root.join("proc/self/cgroup")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            let base = root.join("sys/fs/cgroup");
            if let Some((v, f)) = smallest_along(&base, rel, "memory.max") {
                found.push((v, MemorySource::CgroupV2(f)));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let base = root.join("sys/fs/cgroup/memory");
            if let Some((v, f)) = smallest_along(&base, rel, "memory.limit_in_bytes") {
                found.push((v, MemorySource::CgroupV1(f)));
            }
        }
    }
    found
}

/// The smallest limit in `file` from `base/rel` up to `base` itself; "max" and v1's huge
/// "unlimited" values count as no limit.
fn smallest_along(base: &Path, rel: &str, file: &str) -> Option<(u64, PathBuf)> {
    let mut dir = base.join(rel);
    let mut best: Option<(u64, PathBuf)> = None;
    loop {
        let f = dir.join(file);
        if let Ok(v) = std::fs::read_to_string(&f) {
            if let Ok(n) = v.trim().parse::<u64>() {
                if n < (1 << 60) && best.as_ref().is_none_or(|b| n < b.0) {
                    best = Some((n, f));
                }
            }
        }
        if dir == base || !dir.pop() || !dir.starts_with(base) {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resident size a job measures the drivers with grows by the pages a buffer touches
    /// (tried a few times: the tests running beside this one free memory too).
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_bytes_counts_touched_pages() {
        let grew = (0..5).any(|_| {
            let before = resident_bytes().expect("VmRSS on Linux");
            let held = std::hint::black_box(vec![1u8; 64 << 20]);
            let after = resident_bytes().expect("VmRSS on Linux");
            held[12345] == 1 && after >= before + (60 << 20)
        });
        assert!(grew, "64 MiB of touched pages never showed in VmRSS");
    }

    /// A size shown as "at least" parses back to no less than it.
    #[test]
    fn sizes_shown_up_are_enough() {
        for bytes in [1u64, 1023, 1025, (64 << 20) + 1, 2_212_345_678, 49_131 << 10, (3 << 30) - 1] {
            let shown = format_size_up(bytes);
            let back = parse_size(&shown.replace(' ', "")).unwrap();
            assert!(back >= bytes, "{bytes} shown as {shown}, read back as {back}");
        }
        assert_eq!(format_size_up(64 << 20), "64.0 MiB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5M").unwrap(), 3 << 19);
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(format_size(64 << 20), "64.0 MiB");
    }

    fn tree(files: &[(&str, &str)]) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "gigascale-cg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for (p, text) in files {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        root
    }

    const MEMINFO_16G: &str = "MemTotal:       16777216 kB\nMemFree: 1 kB\n";

    #[test]
    fn a_512m_cgroup_v2_limit_wins_over_physical_memory() {
        let root = tree(&[
            ("proc/meminfo", MEMINFO_16G),
            ("proc/self/cgroup", "0::/kubepods/pod1/ctr\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n"),
            ("sys/fs/cgroup/kubepods/memory.max", "max\n"),
        ]);
        let b = default_budget_at(&root);
        assert_eq!(b.memory, 512 << 20);
        assert_eq!(b.bytes, 256 << 20, "a quarter, clamped to 256M, at most half the limit");
        assert_eq!(b.source, MemorySource::CgroupV2(root.join("sys/fs/cgroup/kubepods/pod1/memory.max")));
        assert!(b.to_string().contains("cgroup limit 512.0 MiB"), "{b}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn cgroup_v1_and_namespaced_roots_are_read() {
        // v1, as in older Docker: the limit sits at the mount root seen by the container.
        let root = tree(&[
            ("proc/meminfo", MEMINFO_16G),
            ("proc/self/cgroup", "12:cpu,cpuacct:/\n7:memory:/\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n"),
        ]);
        let b = default_budget_at(&root);
        assert_eq!((b.memory, b.bytes), (2 << 30, 512 << 20));
        assert!(matches!(b.source, MemorySource::CgroupV1(_)));
        std::fs::remove_dir_all(root).unwrap();
        // v1 "unlimited" and v2 "max" everywhere: physical memory decides, clamped to 4G.
        let root = tree(&[
            ("proc/meminfo", MEMINFO_16G),
            ("proc/self/cgroup", "0::/user.slice\n7:memory:/user.slice\n"),
            ("sys/fs/cgroup/user.slice/memory.max", "max\n"),
            ("sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes", "9223372036854771712\n"),
        ]);
        let b = default_budget_at(&root);
        assert_eq!((b.memory, b.bytes, b.source.clone()), (16 << 30, 4 << 30, MemorySource::Physical));
        std::fs::remove_dir_all(root).unwrap();
        // A tiny container: never more than half its limit.
        let root = tree(&[("proc/self/cgroup", "0::/\n"), ("sys/fs/cgroup/memory.max", "209715200\n")]);
        assert_eq!(default_budget_at(&root).bytes, 100 << 20);
        std::fs::remove_dir_all(root).unwrap();
    }
}
