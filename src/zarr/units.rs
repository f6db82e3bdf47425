//! Jobs cut into units: [`plan`] writes the metadata and a plan file into `OUT.ome.zarr`,
//! [`run_unit`] computes one row of shards (every level) from the shared input, [`finalize`]
//! checks that every shard exists and writes the completion marker. [`upscale_zarr`] does the
//! three in one process, into a temporary directory renamed into place: its output equals, byte
//! for byte, that of `plan` + every `run` (in any order, on any number of machines) + `finalize`.
//!
//! The plan lives in the group's `zarr.json` (`attributes.gigascale.plan`); `finalize`
//! rewrites that file with the OME-Zarr metadata and `attributes.gigascale.complete`, the
//! completion marker. Nothing written depends on time, host, process count or order: the plan
//! holds the input's absolute path, size and digest and the options that shape the bytes; the
//! marker holds counts only.

use super::{target::Target, ZarrLayout, ZarrSink};
use crate::error::{Error, Result};
use crate::options::{Options, Request};
use crate::progress::Event;
use crate::sink::place::{check_local, may_write, Found, OutputKind};
use crate::sink::Compression;
use crate::{run_file, Report};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FORMAT: &str = "gigascale-plan/2";

/// What a planned job is: enough to rebuild its options and layout anywhere.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnitPlan {
    /// The input, absolute.
    pub input: PathBuf,
    /// Units (rows of shards).
    pub units: u32,
    /// The output's arrays.
    pub layout: ZarrLayout,
    /// What shapes the output's bytes, as recorded ([`Options::shaping_request`]).
    pub request: Request,
    json: Value,
}

/// The input's identity: size and a digest of its first and last MiB (as `--resume` does, but
/// without the modification time, so that a copy of the input is the same input).
fn digest(input: &Path) -> Result<(u64, String)> {
    let id = crate::digest::identify(input)?;
    Ok((id.len, format!("{:016x}", id.ends)))
}

/// `opts` as an OME-Zarr output runs them: checked for what the format supports, the shard
/// edge resolved, zstd at the resolved level (`--compression none` means the format's
/// default, zstd).
fn shaped(opts: &Options) -> Result<Options> {
    opts.validate()?;
    if !matches!(opts.compression, Compression::None | Compression::Zstd) {
        return Err(Error::usage(format!(
            "OME-Zarr output is zstd-compressed; --compression {} applies to TIFF",
            opts.compression.name()
        )));
    }
    if opts.model.is_some() {
        return Err(Error::usage("--model with OME-Zarr output is not supported yet; write a .tif"));
    }
    opts.refuse_f16("write OME-Zarr")?;
    let mut o = opts.clone();
    o.shard = if opts.shard == 0 { opts.tile * super::DEFAULT_SHARD_TILES } else { opts.shard };
    (o.compression, o.level) = (Compression::Zstd, Some(opts.level.unwrap_or(3).clamp(1, 22)));
    Ok(o)
}

impl UnitPlan {
    /// Plans `input` with `opts`: sizes, layout, units.
    pub fn new(input: &Path, opts: &Options) -> Result<UnitPlan> {
        let shaped = shaped(opts)?;
        let input = std::path::absolute(input).map_err(|e| Error::io(input, e))?;
        let source = crate::source::open(&input, opts.limits.max_memory)?;
        let info = source.info();
        let out = opts
            .output_size(info.width, info.height)
            .map_err(|e| Error::usage(format!("{}: {}x{} input: {e}", input.display(), info.width, info.height)))?;
        let request = shaped.shaping_request(out);
        let level = shaped.level.unwrap_or(3);
        let layout = ZarrLayout::new(out, info.layout, shaped.tile, shaped.shard, shaped.pyramid, level)?;
        let (bytes, digest) = digest(&input)?;
        // The output's resolution (the input's scaled, or --dpi) as the physical size of a
        // pixel, for the OME axes' units; none when the input has no resolution.
        let dpi = info.metadata.output_dpi(opts.dpi, (info.width, info.height), out);
        let pixel_um = dpi.map(|(x, y)| [25_400.0 / y, 25_400.0 / x]);
        let json = json!({
            "format": FORMAT,
            "writer": format!("gigascale {}", env!("CARGO_PKG_VERSION")),
            "input": {"path": input.to_string_lossy(), "bytes": bytes, "digest": digest,
                      "width": info.width, "height": info.height},
            "output": {"width": out.0, "height": out.1, "channels": info.layout.channels.count(),
                       "bits": info.layout.depth.bits(), "levels": layout.levels.len()},
            "request": request,
            "units": layout.shard_grid().1,
            "shards_per_unit": layout.shard_grid().0,
            "pixel_size_um": pixel_um,
        });
        Ok(UnitPlan { input, units: layout.shard_grid().1, layout, request, json })
    }

    /// Reads the plan of the output `out` (from its group's `zarr.json`).
    pub fn load(out: &Path) -> Result<UnitPlan> {
        Self::load_from(&Target::open(out, &std::env::temp_dir())?)
    }

    fn load_from(target: &Target) -> Result<UnitPlan> {
        let path = PathBuf::from(format!("{}/zarr.json", target.name()));
        let text = target.read("zarr.json")?.ok_or_else(|| {
            Error::io(&path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (not planned?)"))
        })?;
        let group: Value = serde_json::from_slice(&text).map_err(|e| Error::format(&path, format!("not JSON: {e}")))?;
        let json = group["attributes"]["gigascale"]["plan"].clone();
        if json.is_null() {
            return Err(Error::format(
                &path,
                "no gigascale plan in this group's attributes (not made by `gigascale plan`)",
            ));
        }
        let bad = |what: &str| Error::format(&path, format!("plan: {what} missing or invalid"));
        if json["format"] != FORMAT {
            return Err(bad("format (written by another version?)"));
        }
        let input = PathBuf::from(json["input"]["path"].as_str().ok_or_else(|| bad("input.path"))?);
        let request: Request =
            serde_json::from_value(json["request"].clone()).map_err(|e| bad(&format!("request ({e})")))?;
        let opts = request.options().map_err(|e| bad(&format!("request ({e})")))?;
        let (Some(out), Some(level)) = (request.width.zip(request.height), opts.level) else {
            return Err(bad("request's width, height or level"));
        };
        let source = crate::source::open(&input, u64::MAX / 4)?;
        let layout = ZarrLayout::new(out, source.info().layout, opts.tile, opts.shard, opts.pyramid, level)?;
        let units = json["units"].as_u64().ok_or_else(|| bad("units"))?;
        if units != layout.shard_grid().1 as u64 {
            return Err(bad("units"));
        }
        Ok(UnitPlan { input, units: layout.shard_grid().1, layout, request, json })
    }

    /// The options of one run: what shapes the bytes from the plan, the run's own budget,
    /// threads, backend, temp dir and cancel flag from `runtime`.
    pub fn options(&self, runtime: &Request) -> Result<Options> {
        self.request.with_runtime(runtime).options()
    }

    /// Writes the arrays' metadata and the group's, with the plan.
    fn write_metadata(&self, target: &Target) -> Result<()> {
        for n in 0..self.layout.levels.len() {
            target.write(&format!("{n}/zarr.json"), &pretty(&self.layout.array_metadata(n)?)?)?;
        }
        self.write_group(target, None)
    }

    /// Writes the group's `zarr.json`: the plan, and once `complete` (counts) the OME-Zarr
    /// metadata and the completion record.
    fn write_group(&self, target: &Target, complete: Option<Value>) -> Result<()> {
        let name = self.input.file_stem().map_or("image".into(), |s| s.to_string_lossy().into_owned());
        let mut attrs = json!({"plan": self.json});
        if let Some(c) = &complete {
            attrs["complete"] = c.clone();
        }
        let pixel =
            self.json["pixel_size_um"].as_array().and_then(|v| Some((v.first()?.as_f64()?, v.get(1)?.as_f64()?)));
        let group = self.layout.group_metadata(&name, attrs, complete.is_some(), pixel);
        target.write("zarr.json", &pretty(&group)?)
    }

    /// Checks that the input is still the one planned.
    fn check_input(&self) -> Result<()> {
        let (bytes, d) = digest(&self.input)?;
        if self.json["input"]["bytes"] != bytes || self.json["input"]["digest"] != d.as_str() {
            return Err(Error::format(&self.input, "the input changed since the job was planned; plan it again"));
        }
        Ok(())
    }
}

/// Whether `target` holds a group written by gigascale (its `zarr.json` has a plan).
fn made_by_gigascale(target: &Target) -> bool {
    let text = target.read("zarr.json").ok().flatten().unwrap_or_default();
    serde_json::from_slice::<Value>(&text).is_ok_and(|v| v["attributes"]["gigascale"]["plan"].is_object())
}

/// JSON as written: pretty, keys in insertion order.
fn pretty(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The target of `out`, shards staged (for a bucket) in `temp_dir` or the system's.
fn target(out: &Path, temp_dir: Option<&Path>) -> Result<Arc<Target>> {
    Ok(Arc::new(Target::open(out, &temp_dir.map_or_else(std::env::temp_dir, Path::to_path_buf))?))
}

/// `gigascale plan`: creates the output `out` (a directory, or `s3://bucket/path`) with its
/// metadata and plan; returns the plan (its `units`). An existing output is refused unless
/// `overwrite` and it is a gigascale output (it is then removed first).
pub fn plan(input: &Path, out: &Path, opts: &Options, overwrite: bool) -> Result<UnitPlan> {
    let p = UnitPlan::new(input, opts)?;
    let t = target(out, opts.temp_dir.as_deref())?;
    prepare(input, &t, overwrite, true)?;
    if let Some(d) = t.dir() {
        std::fs::create_dir(d).map_err(|e| Error::io(d, e))?;
    }
    p.write_metadata(&t)?;
    Ok(p)
}

/// The one clobbering rule ([`may_write`]) for target `t`; with `remove`, an old output that
/// may be replaced is removed.
fn prepare(input: &Path, t: &Target, overwrite: bool, remove: bool) -> Result<()> {
    let ours = |_: &Path| made_by_gigascale(t);
    let found = match t.dir() {
        Some(d) => {
            check_local(input, d, OutputKind::Zarr, overwrite, &ours)?;
            Found::on_disk(input, d, &ours)
        }
        None => {
            let found = if t.exists()? { Found::Existing { dir: true, ours: ours(input) } } else { Found::Nothing };
            may_write(&t.name(), OutputKind::Zarr, found, overwrite)?;
            found
        }
    };
    if remove && found != Found::Nothing {
        t.remove_all()?;
    }
    Ok(())
}

/// `gigascale run OUT --unit I`: computes unit `unit` (row of shards `unit`, every level) of
/// the planned output `out`, with the run's own budget, threads, backend, temp dir and cancel
/// flag from `runtime` (its other fields are the plan's). Rerunning a unit, or running it
/// twice at once, writes the same bytes (each shard is renamed into place whole); temporary
/// files left by dead processes of this host are removed.
pub fn run_unit(out: &Path, unit: u32, runtime: &Request, progress: &mut dyn FnMut(&Event)) -> Result<Report> {
    let t = target(out, runtime.temp_dir.as_deref())?;
    let p = UnitPlan::load_from(&t)?;
    if unit >= p.units {
        return Err(Error::usage(format!("--unit {unit}: {} has units 0..{}", t.name(), p.units)));
    }
    p.check_input()?;
    let opts = p.options(runtime)?;
    for n in 0..p.layout.levels.len() {
        t.sweep(&format!("{n}/c/0/{unit}"), false)?;
    }
    let source = crate::source::open(&p.input, opts.limits.max_memory)?;
    let mut sink = ZarrSink::new(t, p.layout.clone());
    run_file(&p.input, source, &mut sink, &opts, Some(unit..unit + 1), progress)
}

/// What [`finalize`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finalized {
    /// Shards, all levels.
    pub shards: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Temporary files of interrupted runs that were removed.
    pub removed: usize,
}

/// `gigascale finalize OUT`: removes temporary files left by interrupted runs, checks that
/// every shard of every level exists, and writes the completion marker. Fails with
/// [`Error::Incomplete`] naming the units whose shards are missing.
pub fn finalize(out: &Path) -> Result<Finalized> {
    finalize_in(&Target::open(out, &std::env::temp_dir())?)
}

fn finalize_in(t: &Target) -> Result<Finalized> {
    let p = UnitPlan::load_from(t)?;
    let (across, down) = p.layout.shard_grid();
    let (mut shards, mut bytes, mut removed, mut missing) = (0u64, 0u64, 0usize, 0u64);
    let mut units = Vec::new();
    for n in 0..p.layout.levels.len() {
        for sy in 0..down {
            let dir = format!("{n}/c/0/{sy}");
            removed += t.sweep(&dir, true)?;
            let present: std::collections::HashMap<String, u64> = t.shards(&dir)?.into_iter().collect();
            for sx in 0..across {
                match present.get(&ZarrLayout::shard_key(n, (sx, sy))) {
                    Some(len) => {
                        shards += 1;
                        bytes += len;
                    }
                    None => {
                        missing += 1;
                        units.push(sy);
                    }
                }
            }
        }
    }
    if missing > 0 {
        units.sort_unstable();
        units.dedup();
        return Err(Error::Incomplete { path: PathBuf::from(t.name()), shards: missing, units });
    }
    p.write_group(t, Some(json!({"units": p.units, "shards": shards, "shard_bytes": bytes})))?;
    Ok(Finalized { shards, bytes, removed })
}

/// The whole job in one process: plan into a temporary directory beside `out`, compute every
/// unit in one pass, finalize, rename into place. Nothing is left behind on failure.
pub fn upscale_zarr(
    input: &Path,
    out: &Path,
    opts: &Options,
    overwrite: bool,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    let p = UnitPlan::new(input, opts)?;
    let dest = target(out, opts.temp_dir.as_deref())?;
    prepare(input, &dest, overwrite, false)?;
    // A directory is built beside its final name and renamed into place; a bucket's objects
    // are written in place (the OME metadata last) and removed again on failure.
    let t = match dest.dir() {
        Some(d) => {
            let name = d.file_name().map_or("out".into(), |f| f.to_string_lossy().into_owned());
            let tmp = d.with_file_name(format!(".{name}.gigascale-partial"));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
            Arc::new(Target::Dir(tmp))
        }
        None => {
            prepare(input, &dest, overwrite, true)?;
            dest.clone()
        }
    };
    let mut guard = RemoveOnDrop(Some(t.clone()));
    p.write_metadata(&t)?;
    // The options the plan recorded (the same bytes as its units), with this run's own.
    let opts = shaped(opts)?;
    let source = crate::source::open(&p.input, opts.limits.max_memory)?;
    let mut sink = ZarrSink::new(t.clone(), p.layout.clone());
    let report = run_file(&p.input, source, &mut sink, &opts, None, progress)?;
    drop(sink);
    finalize_in(&t)?;
    if let (Some(tmp), Some(d)) = (t.dir(), dest.dir()) {
        prepare(input, &dest, overwrite, true)?;
        std::fs::rename(tmp, d).map_err(|e| Error::io(d, e))?;
    }
    guard.0 = None;
    Ok(report)
}

/// Removes a partial output when dropped (a failed single-process run's).
struct RemoveOnDrop(Option<Arc<Target>>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.remove_all();
        }
    }
}
