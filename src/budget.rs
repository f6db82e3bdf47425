//! The memory budget: one number (`--max-memory`) from which every queue, ring and cache
//! takes its capacity. [`parse_size`] reads the user's notation, [`default_budget`] picks the
//! default from the machine or its container, and [`plan_memory`] sizes a job's threads, ring
//! and GPU slots from its [`Geometry`] before anything is allocated.

use crate::error::{Error, Result};
use crate::plan::Geometry;
use crate::resample::Scratch;
use std::path::{Path, PathBuf};

/// Parses `512K`, `64M`, `2G`, `1T`, `12345` (bytes) or with a trailing `B`/`iB`
/// (`64MB`, `64MiB`). Units are binary (K = 1024).
///
/// ```
/// use gigascale::budget::parse_size;
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
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
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

// ---- The memory plan -------------------------------------------------------------------

/// How the budget was spent: chosen parallelism and the itemised estimate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemoryPlan {
    /// Worker threads.
    pub threads: usize,
    /// Tile slots in the ring.
    pub slots: usize,
    /// Slots in the GPU ring (0 without a GPU).
    pub gpu_slots: usize,
    /// Peak estimate in bytes.
    pub total: u64,
    /// Items of the estimate.
    pub items: Vec<(&'static str, u64)>,
}

/// Fixed allowance for allocator slack and small structures.
pub(crate) const SLACK: u64 = 2 << 20;

/// What the stages of a job need, besides what the plan itself implies.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// The decoder's own working memory.
    pub source_decode: u64,
    /// The sink's tables or bands.
    pub sink_memory: u64,
    /// One tile encoder's working memory.
    pub encoder_memory: u64,
    /// Worst-case encoded size of one tile.
    pub encoded_bound: usize,
    /// Whether tiles pass to the sink unencoded (no second buffer per slot).
    pub passthrough: bool,
    /// GPU ring: most slots wanted, host staging bytes per slot, and tiles each slot holds
    /// while it computes (a run of tiles: so many tile buffers of the ring are in the GPU's
    /// hands per slot).
    pub gpu: Option<(usize, u64, usize)>,
    /// The largest model pass (0 without a model); it runs before the tile stage.
    pub neural: u64,
    /// Rows of tiles whose source rows stay resident together: 1 for row-major tile order,
    /// a shard's height in tiles for a sharded output (see [`crate::Plan::with_groups`]).
    pub band_rows: u32,
}

/// The sizes a memory plan sums, from the geometry and the stages' needs.
struct Sizes {
    coeffs: u64,
    row_bytes: u64,
    /// One worker's scratch, its tile buffer and its encoder.
    worker: u64,
    /// One ring slot (raw tile, plus the encoded copy unless tiles pass through).
    slot: u64,
    tile_count: u64,
    gpu_per_slot: u64,
    sink: u64,
    decode: u64,
    neural: u64,
    band_rows: u32,
}

impl Sizes {
    /// The plan for `threads` workers, `slots` tile buffers and `gpu_slots` GPU slots.
    fn estimate(&self, geom: &Geometry, threads: usize, slots: usize, gpu_slots: usize) -> MemoryPlan {
        // Never more tile buffers than the job has tiles.
        let slots = (slots as u64).min(self.tile_count.max(1)) as usize;
        // Tiles in flight span at most this many rows of tiles; their source rows are resident.
        let across = geom.tiles_across().max(1) as usize;
        let rows_in_flight = (slots.div_ceil(across) + 1) as u32 + self.band_rows.max(1) - 1;
        let band = geom.window_bound(1, rows_in_flight).1 + 2;
        let items = [
            ("coefficient tables", self.coeffs),
            ("resident source band", band.saturating_mul(self.row_bytes)),
            ("worker scratch", (threads as u64).saturating_mul(self.worker)),
            ("tile ring", (slots as u64).saturating_mul(self.slot)),
            ("sink", self.sink),
            ("gpu staging", gpu_slots as u64 * self.gpu_per_slot),
        ];
        let compute_total = items.iter().fold(0u64, |a, i| a.saturating_add(i.1));
        let mut items = items.to_vec();
        items.push(("decoder (before compute)", self.decode));
        if self.neural > 0 {
            items.push(("model passes (before compute)", self.neural));
        }
        items.push(("slack", SLACK));
        let total = compute_total.max(self.decode).max(self.neural).saturating_add(SLACK);
        MemoryPlan { threads, slots, gpu_slots, total, items }
    }
}

/// Sizes the job for `budget`: the most threads (up to `want`), tile slots (up to 2 per
/// thread) and GPU slots that fit. Fails with the itemised minimum when even one thread and
/// one slot do not fit.
///
/// Everything is computed from the [`Geometry`] alone (analytic upper bounds of the tables,
/// windows and resident rows), before any of those allocations exists, so a refusal costs
/// nothing.
pub fn plan_memory(geom: &Geometry, needs: Needs, want: usize, budget: u64) -> Result<MemoryPlan> {
    let (max_gpu, gpu_per_slot, gpu_run) = needs.gpu.unwrap_or((0, 0, 1));
    let tile_bytes = geom.tile_bytes();
    let sizes = Sizes {
        coeffs: geom.coefficient_bytes(),
        row_bytes: geom.row_bytes(),
        worker: Scratch::bytes_for(geom).saturating_add(tile_bytes).saturating_add(needs.encoder_memory),
        slot: tile_bytes.saturating_add(if needs.passthrough { 0 } else { needs.encoded_bound as u64 }),
        tile_count: geom.tile_count(),
        gpu_per_slot,
        sink: needs.sink_memory,
        decode: needs.source_decode.saturating_add(64u64.saturating_mul(geom.row_bytes())),
        neural: needs.neural,
        band_rows: needs.band_rows,
    };
    // GPU ring sizes to try, largest first (none without a GPU).
    let gpu_sizes: Vec<usize> = if max_gpu == 0 {
        vec![0]
    } else {
        let runs = sizes.tile_count.div_ceil(gpu_run.max(1) as u64).clamp(1, max_gpu as u64) as usize;
        std::iter::successors(Some(runs), |&g| (g > 1).then_some(g / 2)).collect()
    };
    let mut threads = want.max(1);
    loop {
        for (n, &g) in gpu_sizes.iter().enumerate() {
            // The GPU holds g·run tile buffers; the workers need their own on top, or they starve
            // (a smaller GPU ring is tried before that). Only the smallest ring may go without.
            let held = g * gpu_run;
            let last = n + 1 == gpu_sizes.len();
            let candidates = [2 * threads + held, threads + 1 + held, threads + held, held.max(1)];
            for &slots in &candidates[..if last { 4 } else { 3 }] {
                let m = sizes.estimate(geom, threads, slots, g);
                if m.total <= budget {
                    return Ok(m);
                }
            }
        }
        if threads == 1 {
            break;
        }
        threads = (threads / 2).max(1);
    }
    Err(refusal(&sizes.estimate(geom, 1, 1, gpu_sizes.last().copied().unwrap_or(0)), budget))
}

/// The error for a budget that cannot hold even the smallest plan `min`, itemised.
fn refusal(min: &MemoryPlan, budget: u64) -> Error {
    let detail = min
        .items
        .iter()
        .filter(|i| i.1 > 0)
        .map(|(n, v)| format!("{n} {}", format_size(*v)))
        .collect::<Vec<_>>()
        .join(", ");
    Error::limit(
        "--max-memory",
        min.total,
        budget,
        Some(format!(
            "the smallest plan needs {} ({detail}); raise --max-memory or lower --tile",
            format_size(min.total)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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
