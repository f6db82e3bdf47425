//! Upscaling files: the container chosen by the output's name, the one clobbering rule
//! (`sink/place.rs`), the temporary name and rename (by the sinks), and `--resume`'s journal
//! fingerprint. OME-Zarr outputs go to [`crate::zarr::units`], which plans and runs them as one
//! unit-cut job.

use crate::error::{Error, Result};
use crate::job::{run_file, Report};
use crate::options::Options;
use crate::pixel::Layout;
use crate::progress::Event;
use crate::sink::place::{check_local, OutputKind};
use crate::sink::{self, Compression};
use crate::source;
use std::path::Path;

/// How [`upscale`] treats files (what [`crate::run`], which is handed a sink, has no use for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Files {
    /// Replace an existing output (the input is never overwritten).
    pub overwrite: bool,
    /// Journal the output so that a killed run can be continued by rerunning with `resume`
    /// (TIFF output only).
    pub resume: bool,
}

/// Upscales the image file `input` into `output` (`.tif`, `.tiff`, `.png`, or `.ome.zarr`:
/// see [`crate::zarr`]).
///
/// The output appears only when complete: it is written under a temporary name beside it,
/// synced and renamed. On any error nothing is left behind (with `files.resume`, the partial
/// output and its journal stay for the next run).
pub fn upscale(
    input: &Path,
    output: &Path,
    opts: &Options,
    files: Files,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    opts.validate()?;
    let kind = OutputKind::from_path(output)?;
    check_kind(kind, output, opts, files)?;
    if kind == OutputKind::Zarr {
        return crate::zarr::units::upscale_zarr(input, output, opts, files.overwrite, progress);
    }
    check_local(input, output, kind, files.overwrite, &|_| false)?;
    let source = source::open(input, opts.limits.max_memory)?;
    let info = source.info();
    let (w, h) = opts
        .output_size(info.width, info.height)
        .map_err(|e| Error::usage(format!("{}: {}x{} input: {e}", input.display(), info.width, info.height)))?;
    let mut sink: Box<dyn sink::TileSink> = match kind {
        OutputKind::Tiff if files.resume => {
            let fp = fingerprint(input, opts, (w, h), info.layout)?;
            Box::new(
                sink::TiffSink::resumable(output, opts.compression, opts.level, fp)?
                    .pyramid(opts.pyramid, opts.resolved_threads()),
            )
        }
        OutputKind::Png if w > i32::MAX as u32 || h > i32::MAX as u32 => {
            return Err(Error::usage(format!("{}: {w}x{h} is too large for PNG; name it .tif", output.display())));
        }
        OutputKind::Png => Box::new(sink::PngSink::create(output)?.level(opts.level)),
        OutputKind::Jpeg => {
            if let Some(why) = sink::jpeg::refusal(w, h, info.layout) {
                return Err(Error::usage(format!("{}: {why}", output.display())));
            }
            let quality = opts.quality.unwrap_or(sink::jpeg::DEFAULT_QUALITY);
            Box::new(sink::JpegSink::create(output, quality, opts.subsampling.unwrap_or_default())?)
        }
        OutputKind::Webp => {
            if let Some(why) = sink::webp::refusal(w, h, info.layout) {
                return Err(Error::usage(format!("{}: {why}", output.display())));
            }
            match opts.quality {
                Some(q) => Box::new(sink::WebpLossySink::create(output, q)?),
                None => Box::new(sink::WebpSink::create(output)?),
            }
        }
        _ => Box::new(
            sink::TiffSink::create(output, opts.compression, opts.level)?
                .pyramid(opts.pyramid, opts.resolved_threads()),
        ),
    };
    run_file(input, source, sink.as_mut(), opts, None, progress)
}

/// Removes what an interrupted `--resume` run left beside `output` (its partial file and
/// journal), for a caller that gives the job up instead of resuming it.
pub fn remove_partial(output: &Path) {
    let (partial, journal) = sink::journal::paths(output);
    let _ = std::fs::remove_file(partial);
    let _ = std::fs::remove_file(journal);
}

/// What each kind of output refuses among the options.
fn check_kind(kind: OutputKind, output: &Path, opts: &Options, files: Files) -> Result<()> {
    let name = output.display();
    if files.resume {
        opts.refuse_f16("be combined with --resume")?;
    }
    let lossy = opts.quality.is_some() && !matches!(kind, OutputKind::Jpeg | OutputKind::Webp);
    match kind {
        OutputKind::Png if opts.compression != Compression::None => {
            Err(Error::usage("--compression applies to TIFF output; PNG is always deflate-compressed"))
        }
        _ if lossy => {
            Err(Error::usage(format!("{name}: --quality applies to JPEG (.jpg) and lossy WebP (.webp) output")))
        }
        _ if opts.subsampling.is_some() && kind != OutputKind::Jpeg => {
            Err(Error::usage(format!("{name}: --subsampling applies to JPEG output (.jpg); lossy WebP is 4:2:0")))
        }
        OutputKind::Jpeg | OutputKind::Webp
            if opts.compression != Compression::None || opts.pyramid || files.resume =>
        {
            Err(Error::usage(format!("{name}: --compression, --pyramid and --resume apply to TIFF output")))
        }
        OutputKind::Zarr if files.resume => Err(Error::usage(format!(
            "{name}: --resume is for TIFF; an OME-Zarr job resumes by unit (gigascale plan / run / finalize)"
        ))),
        OutputKind::Png => match opts.level {
            Some(l) if !(sink::PNG_LEVELS.0..=sink::PNG_LEVELS.1).contains(&l) => Err(Error::usage(format!(
                "{name}: --level {l}: PNG takes 0..=9 (0 stored, 1 fastest, 6 the default, 9 smallest)"
            ))),
            _ if opts.pyramid => Err(Error::usage(format!("{name}: --pyramid applies to TIFF output"))),
            _ if files.resume => Err(Error::usage(format!("{name}: --resume works for TIFF output only"))),
            _ => Ok(()),
        },
        _ if opts.level.is_some() && opts.compression.level_range().is_none() => Err(Error::usage(format!(
            "{name}: --level applies to PNG output and to TIFF's --compression deflate or zstd (not {})",
            opts.compression.name()
        ))),
        _ => Ok(()),
    }
}

/// Identifies a job for `--resume`: the input (size, modification time, first and last MiB),
/// everything that shapes the output bytes, and the version that writes them. Threads, budget
/// and backend are left out: they do not change a single byte.
fn fingerprint(input: &Path, opts: &Options, out: (u32, u32), layout: Layout) -> Result<u64> {
    let id = crate::digest::identify(input)?;
    let model =
        opts.model.as_ref().map_or(String::new(), |m| format!("{} {:x} {}", m.name(), m.digest(), opts.model_passes));
    let desc = format!(
        "{} {} {} {:x} {}x{} {:?} {:?} {} {:?} {:?} {:?} {} {} {model}",
        env!("CARGO_PKG_VERSION"),
        id.len,
        id.modified_ns,
        id.ends,
        out.0,
        out.1,
        opts.filter,
        layout,
        opts.tile,
        opts.compression.name(),
        opts.level,
        opts.intermediate,
        opts.gpu_f16,
        opts.pyramid
    );
    Ok(crate::digest::Fnv::default().bytes(desc.as_bytes()).0)
}
