//! A job, from options to report, in named stages:
//!
//! 1. [`Job::prepare`]: validate the options, check the input against `max_pixels`, derive the
//!    geometry, size everything from the budget ([`plan_memory`](crate::budget::plan_memory)),
//!    build the coefficient tables and choose the backend. No thread is started and no file is
//!    created, so it can be called (and tested) on its own, and a job that cannot run fails
//!    here.
//! 2. Open the backend (`backend.rs`; `auto` may open the GPU later, on its own thread).
//! 3. [`decode_into_store`]: the source's rows into the memory-mapped store.
//! 4. The model's passes, if any (`passes.rs`): its network made ready, then each pass from
//!    one store into the next.
//! 5. The tile stage (`exec/`): planner, ring, workers, writer, into the sink.
//! 6. The [`Report`].

mod passes;

use crate::backend::Chosen;
use crate::budget::{MemoryPlan, Needs};
use crate::error::{Error, Result};
use crate::exec::{self, Stats, TileStage};
use crate::faces::RestoredFaces;
use crate::neural::stage::PassPlan;
use crate::options::Options;
use crate::pixel::ImageInfo;
use crate::plan::{Geometry, Plan};
use crate::progress::{Event, StageTimes};
use crate::sink::{Compression, SinkHeader, TileSink};
use crate::source::{RowSource, RowWriter};
use crate::store::Store;
use passes::{plan_passes, prepare_network, run_passes};
use std::time::Instant;

/// What a finished job reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// Output size.
    pub output: (u32, u32),
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Per-stage times.
    pub stages: StageTimes,
    /// The memory plan used.
    pub memory: MemoryPlan,
    /// `<kind> <detail>` of the backend that did the work, e.g. `cpu (--backend cpu)`.
    pub backend: String,
}

/// A validated, planned job: everything decided, nothing started.
///
/// ```
/// use gigascale::{Job, Layout, Channels, Depth, Options, Size};
/// use gigascale::source::MemorySource;
/// let src = MemorySource::new(200, 300, Layout::new(Channels::Rgb, Depth::U8), vec![0; 200 * 300 * 3])?;
/// let mut opts = Options::new(Size::Scale { x: 15.0, y: 15.0 });
/// opts.limits.max_memory = 64 << 20;
/// opts.backend = gigascale::Backend::Cpu;
/// // A sink that discards tiles (examples/synthetic.rs has one that checksums them).
/// # struct Discard;
/// # impl gigascale::sink::TileSink for Discard {
/// #     fn begin(&mut self, _: &gigascale::sink::SinkHeader) -> gigascale::Result<()> { Ok(()) }
/// #     fn encoder(&self) -> gigascale::Result<Box<dyn gigascale::sink::TileEncoder>> { Ok(Box::new(gigascale::sink::Raw)) }
/// #     fn write_tile(&mut self, _: &gigascale::TileJob, _: &[u8]) -> gigascale::Result<()> { Ok(()) }
/// #     fn finish(&mut self) -> gigascale::Result<u64> { Ok(0) }
/// # }
/// let job = Job::prepare(&src, &Discard, &opts)?;
/// assert_eq!(job.output(), (3000, 4500));
/// assert!(job.memory().total <= 64 << 20);
/// # Ok::<(), gigascale::Error>(())
/// ```
pub struct Job<'o> {
    opts: &'o Options,
    info: ImageInfo,
    plan: Plan,
    header: SinkHeader,
    memory: MemoryPlan,
    chosen: Chosen,
    encoded_bound: usize,
    /// The model's passes, in order (empty without a model).
    passes: Vec<PassPlan>,
    /// The bands of the plan's tile order to compute (all unless [`Job::restrict`]ed).
    bands: std::ops::Range<u32>,
    /// Restored faces to paste into the tiles (`--faces`).
    faces: Option<RestoredFaces>,
}

impl<'o> Job<'o> {
    /// Validates and plans a job for an input described by `info` and a `sink`: the options
    /// on their own, the input against `max_pixels`, the output size, the memory plan against
    /// `max_memory` (from the geometry alone, before any table exists), then the tables and
    /// the backend choice.
    pub fn prepare(source: &dyn RowSource, sink: &dyn TileSink, opts: &'o Options) -> Result<Job<'o>> {
        opts.validate()?;
        let info = source.info();
        opts.limits.check_pixels(info.width, info.height)?;
        let (ow, oh) = opts.output_size(info.width, info.height)?;
        let mid = opts.model_size(info.width, info.height)?;
        let passes = plan_passes(opts, info)?;
        let geom = Geometry {
            in_size: mid,
            out_size: (ow, oh),
            tile: opts.tile,
            layout: info.layout,
            filter: opts.filter,
            intermediate: opts.intermediate,
        };
        let header = SinkHeader {
            width: ow,
            height: oh,
            tile: opts.tile,
            layout: info.layout,
            icc_profile: info.icc_profile.clone(),
            metadata: output_metadata(&info.metadata, opts.dpi, (info.width, info.height), (ow, oh)),
        };
        let level = opts.level.or(opts.compression.default_level()).unwrap_or(0);
        let tile_bytes = usize::try_from(geom.tile_bytes()).map_err(|_| Error::usage("--tile is too large"))?;
        let chosen = Chosen::new(opts)?;
        // Only uncompressed tiles pass to the sink as they are (no second buffer per slot).
        let overhead = sink.tile_overhead(&header);
        let passthrough = opts.compression == Compression::None && overhead == 0;
        let encoded_bound = if passthrough { 0 } else { opts.compression.bound(tile_bytes) + overhead };
        let groups = sink.groups(&header);
        let needs = Needs {
            band_rows: groups.map_or(1, |g| g.0),
            source_decode: source.decode_memory(),
            sink_memory: sink.memory(&header),
            encoder_memory: opts.compression.encoder_memory(level),
            encoded_bound,
            passthrough,
            gpu: chosen.gpu_need(&geom),
            neural: passes.iter().map(|p| p.bytes).max().unwrap_or(0),
            driver: 0,
        };
        let (chosen, memory) =
            crate::backend::plan_tile_stage(chosen, &geom, needs, opts.resolved_threads(), opts.limits.max_memory)?;
        let mut plan =
            Plan::new(mid.0, mid.1, ow, oh, opts.filter, info.layout, opts.tile)?.with_intermediate(opts.intermediate);
        if let Some((rows, cols)) = groups {
            plan = plan.with_groups(rows, cols);
        }
        let bands = 0..plan.bands();
        Ok(Job { opts, info: info.clone(), plan, header, memory, chosen, encoded_bound, passes, bands, faces: None })
    }

    /// Bands of the plan's tile order (rows of tiles, or rows of shards for a sharded sink).
    pub fn bands(&self) -> u32 {
        self.plan.bands()
    }

    /// Computes only bands `bands` of the plan's tile order (one unit of a distributed job):
    /// the store then holds only the source rows they read, and sources that can stop early
    /// do. Refused with a model (its passes need the whole image).
    pub fn restrict(mut self, bands: std::ops::Range<u32>) -> Result<Self> {
        if bands.start >= bands.end || bands.end > self.plan.bands() {
            return Err(Error::usage(format!("bands {bands:?}: the job has {} bands", self.plan.bands())));
        }
        if self.opts.model.is_some() && bands != (0..self.plan.bands()) {
            return Err(Error::usage("a model's passes need the whole image: --model cannot run in units"));
        }
        self.bands = bands;
        Ok(self)
    }

    /// Positions in the plan's tile order of the bands to compute.
    fn tile_range(&self) -> std::ops::Range<u64> {
        let per = self.plan.band_tiles();
        (self.bands.start as u64 * per)..(self.bands.end as u64 * per).min(self.plan.tile_count())
    }

    /// The source rows the bands to compute read (all when every band is computed).
    fn source_rows(&self) -> std::ops::Range<usize> {
        let k = self.plan.band_rows();
        let r = self.plan.source_rows(self.bands.start * k..self.bands.end * k);
        r.start as usize..r.end as usize
    }

    /// The output size.
    pub fn output(&self) -> (u32, u32) {
        self.plan.geom.out_size
    }
    /// The memory plan.
    pub fn memory(&self) -> &MemoryPlan {
        &self.memory
    }
    /// The plan: tiles and coefficient tables.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs the job: opens the backend, decodes `source` into the store, runs the model's
    /// passes and the tile stage into `sink`, and reports.
    pub fn execute(
        self,
        source: Box<dyn RowSource>,
        sink: &mut dyn TileSink,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Report> {
        let t0 = Instant::now();
        let tiles = self.tile_range();
        let whole = self.bands == (0..self.plan.bands()) || !source.decodes_bands();
        let rows = if whole { 0..self.info.height as usize } else { self.source_rows() };
        let Job { opts, info, plan, header, memory, chosen, encoded_bound, passes, faces, .. } = self;
        if opts.faces.is_some() && faces.is_none() {
            return Err(Error::usage("--faces needs a file input: use run_file or upscale"));
        }
        let temp_dir = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let (opened, backend_init, store, decode_s) =
            open_and_decode(source, (chosen, opts, &plan, &memory), &info, (&tiles, rows, &temp_dir), progress)?;
        let t_neural = Instant::now();
        let mut times = (0.0, 0.0);
        let network = prepare_network(&info, &passes, opts)?;
        let (store, _teardown) = run_passes(store, &info, network, opts, &temp_dir, progress, &mut times)?;
        let neural_s = if passes.is_empty() { 0.0 } else { t_neural.elapsed().as_secs_f64() };
        sink.begin(&header)?;
        let first = sink.resume_point().max(tiles.start);
        if first > tiles.start {
            progress(&Event::Resumed { tiles: first, total: plan.tile_count() });
        }
        let stage = TileStage {
            plan: &plan,
            mem: &memory,
            store: &store,
            opts,
            encoded_bound,
            tiles,
            first,
            device: opened.device,
            shared: opened.shared,
            faces: faces.as_ref(),
        };
        let stats = exec::run_tiles(stage, sink, progress)?;
        let backend = stats.backend.clone().unwrap_or((opened.kind, opened.detail));
        let mut report = report(&stats, &plan, memory, backend, decode_s, backend_init, t0);
        report.stages.neural = neural_s;
        (report.stages.faces, report.stages.faces_restore) =
            faces.as_ref().map_or((0.0, 0.0), |f| (f.seconds.0 + f.seconds.1, f.seconds.1));
        (report.stages.neural_setup, report.stages.neural_network) = times;
        progress(&Event::Done { bytes: report.bytes, seconds: report.seconds, stages: report.stages });
        Ok(report)
    }
}

/// Opens the backend (`--backend gpu` opens the device now, so that a GPU that cannot be used
/// is known before any work; `auto` may open it on the GPU thread, see crate::backend),
/// reports the start, and decodes `source` into a new store of `rows` in `temp_dir`. Returns the backend,
/// its opening's seconds, the store and the decode's seconds.
fn open_and_decode<'a>(
    mut source: Box<dyn RowSource>,
    (chosen, opts, plan, memory): (Chosen, &'a Options, &'a Plan, &MemoryPlan),
    info: &ImageInfo,
    (tiles, rows, temp_dir): (&std::ops::Range<u64>, std::ops::Range<usize>, &std::path::Path),
    progress: &mut dyn FnMut(&Event),
) -> Result<(crate::backend::Opened<'a>, f64, Store, f64)> {
    let t_backend = Instant::now();
    let opened = crate::backend::open(chosen, opts, plan, memory.gpu_slots)?;
    let backend_init = t_backend.elapsed().as_secs_f64();
    progress(&Event::Backend { kind: opened.kind.to_string(), detail: opened.detail.clone() });
    let held = crate::limits::resident_bytes().unwrap_or(0);
    if let Some(message) = driver_warning(memory, (opened.device.is_some(), held), opts.limits.max_memory) {
        progress(&Event::Warning { message });
    }
    progress(&Event::Start {
        input: (info.width, info.height),
        output: plan.geom.out_size,
        tiles: tiles.end - tiles.start,
        threads: memory.threads,
        slots: memory.slots,
        planned_memory: memory.total,
        max_memory: opts.limits.max_memory,
    });
    let mut store = Store::create_rows(temp_dir, info.row_bytes(), info.height as usize, rows)?;
    let decode_s = decode_into_store(source.as_mut(), &mut store, opts, progress)?;
    Ok((opened, backend_init, store, decode_s))
}

/// A warning when a GPU is open and the process already holds `held` bytes (its code, and the
/// driver's code and buffers: 70-80 MiB with lavapipe, most of it loaded when the adapter is
/// chosen; about 100 MiB with an H200's driver) that with the tile stage's plan pass
/// `max_memory` and the 16 MiB the plan leaves to the process itself: a budget too small to
/// keep room for the driver got a plan without it (see [`crate::backend::plan_tile_stage`]), so
/// its peak may pass the budget. (`auto` falls back to the CPU there instead.)
fn driver_warning(memory: &MemoryPlan, (gpu, held): (bool, u64), max_memory: u64) -> Option<String> {
    let need = held.saturating_add(memory.compute_bytes());
    (gpu && need > max_memory.saturating_add(crate::budget::PROCESS_ALLOWANCE)).then(|| {
        let size = crate::limits::format_size;
        format!(
            "the process holds {} with the GPU driver loaded, which the tile stage's plan ({}) does not \
             count: its peak may pass --max-memory {} (--backend cpu stays within it)",
            size(held),
            size(memory.compute_bytes()),
            size(max_memory),
        )
    })
}

/// Builds the report from the tile stage's figures and the others'.
fn report(
    stats: &Stats,
    plan: &Plan,
    memory: MemoryPlan,
    backend: (&'static str, String),
    decode: f64,
    backend_init: f64,
    t0: Instant,
) -> Report {
    let stages = StageTimes {
        decode,
        faces: 0.0,
        faces_restore: 0.0,
        neural: 0.0,
        neural_setup: 0.0,
        neural_network: 0.0,
        compute: stats.compute_s,
        encode: stats.encode_s,
        write: stats.write_s,
        backend_init,
        gpu_upload: stats.gpu.upload,
        gpu_wait: stats.gpu.wait,
        gpu_readback: stats.gpu.readback,
        gpu_tiles: stats.gpu.tiles,
    };
    Report {
        output: plan.geom.out_size,
        bytes: stats.bytes,
        seconds: t0.elapsed().as_secs_f64(),
        stages,
        memory,
        backend: format!("{} {}", backend.0, backend.1),
    }
}

/// Decodes every row of `source` into `store`, reporting `Decode` events and polling the
/// cancel flag; returns the wall seconds it took. Fails if the source leaves a row unwritten.
pub fn decode_into_store(
    source: &mut dyn RowSource,
    store: &mut Store,
    opts: &Options,
    progress: &mut dyn FnMut(&Event),
) -> Result<f64> {
    let td = Instant::now();
    let total = store.height() as u64;
    let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
    let mut on_rows = |rows: u64| progress(&Event::Decode { rows, total });
    let mut w = RowWriter::new(store, &cancelled, &mut on_rows);
    source.decode(&mut w)?;
    w.check_complete()?;
    exec::check_cancel(opts)?;
    Ok(td.elapsed().as_secs_f64())
}

/// The one assembly of a job whose input is a file (`upscale`, a distributed plan's units
/// and its one-process form): plans `source` (opened from `input`) for `sink`, restricted to
/// `bands` of the tile order when given (one unit), and executes it. A limit error names the
/// input and the sizes.
pub fn run_file(
    input: &std::path::Path,
    source: Box<dyn RowSource>,
    sink: &mut dyn TileSink,
    opts: &Options,
    bands: Option<std::ops::Range<u32>>,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    let (w, h) = (source.info().width, source.info().height);
    let sizes = match opts.output_size(w, h) {
        Ok((ow, oh)) => format!("{w}x{h} -> {ow}x{oh}"),
        Err(_) => format!("{w}x{h}"),
    };
    let context = |e| match e {
        Error::Limit { what, needed, limit, unit, hint } => {
            Error::Limit { what: format!("{} ({sizes}): {what}", input.display()), needed, limit, unit, hint }
        }
        e => e,
    };
    // Faces first (their own decode, within the whole budget), then the job in what is left.
    let faces = match &opts.faces {
        Some(restore) => {
            opts.validate()?;
            let mut faces = restore_faces(input, source.info(), restore, opts, progress).map_err(context)?;
            enlarge_faces(&mut faces, opts).map_err(context)?;
            Some(faces)
        }
        None => None,
    };
    let held = faces.as_ref().map_or(0, RestoredFaces::bytes);
    let mut rest = opts.clone();
    rest.limits.max_memory = opts.limits.max_memory.checked_sub(held).ok_or_else(|| {
        let n = faces.as_ref().map_or(0, |f| f.faces.len());
        let hint = format!("{n} restored faces are kept through the tile stage");
        context(Error::limit("restored faces", held, opts.limits.max_memory, Some(hint)))
    })?;
    let mut job = Job::prepare(source.as_ref(), sink, &rest).map_err(context)?;
    job.faces = faces;
    if let Some(bands) = bands {
        job = job.restrict(bands)?;
    }
    job.execute(source, sink, progress).map_err(context)
}

/// With a model, faces larger than 512 px in the output are enlarged by it first (once, by
/// its own factor), as the rest of the image is; the filter then samples the enlarged face.
/// Each is a small job of its own on the job's backend (the exact engine: the same bytes as
/// `gigascale upscale face.png --model M --scale F` on any backend), in the budget the faces
/// leave; its seconds count as restoration's.
fn enlarge_faces(faces: &mut RestoredFaces, opts: &Options) -> Result<()> {
    let Some(model) = &opts.model else { return Ok(()) };
    let (zoom, t0) = (model.scale(), Instant::now());
    for (i, face) in faces.large() {
        let edge = crate::faces::FACE_EDGE as u32;
        let layout = crate::pixel::Layout::new(crate::pixel::Channels::Rgb, crate::pixel::Depth::U8);
        let source = crate::source::MemorySource::new(edge, edge, layout, face.to_vec())?;
        let mut o = Options::new(crate::options::Size::Scale { x: zoom as f64, y: zoom as f64 });
        (o.model, o.backend, o.threads) = (Some(model.clone()), opts.backend, opts.threads);
        (o.temp_dir, o.cancel, o.limits) = (opts.temp_dir.clone(), opts.cancel.clone(), opts.limits);
        o.limits.max_memory = opts.limits.max_memory.saturating_sub(faces.bytes() + face.len() as u64);
        let mut sink = crate::sink::MemorySink::default();
        run(Box::new(source), &mut sink, &o, &mut |_| {})?;
        faces.enlarge(i, sink.into_pixels()?, zoom);
    }
    faces.seconds.1 += t0.elapsed().as_secs_f64();
    Ok(())
}

/// Detects and restores the faces of `input` for the job's output, reporting `Faces` events.
fn restore_faces(
    input: &std::path::Path,
    info: &ImageInfo,
    restore: &crate::faces::RestoreOptions,
    opts: &Options,
    progress: &mut dyn FnMut(&Event),
) -> Result<RestoredFaces> {
    let output = opts.output_size(info.width, info.height)?;
    let mut detect = crate::faces::DetectOptions::default();
    (detect.max_memory, detect.threads, detect.temp_dir) =
        (opts.limits.max_memory, opts.threads, opts.temp_dir.clone());
    let mut on_face =
        |done: usize, found: usize| progress(&Event::Faces { done: done as u64, found: found as u64, device: None });
    let faces = crate::faces::restore_file(input, output, opts.filter, restore, &detect, &mut on_face)?;
    let (restored, found) = (faces.restored() as u64, faces.faces.len() as u64);
    progress(&Event::Faces { done: restored, found, device: Some(faces.device.to_string()) });
    exec::check_cancel(opts)?;
    Ok(faces)
}

/// Runs a whole job from a [`RowSource`] to a [`TileSink`]: [`Job::prepare`], then
/// [`Job::execute`]. Every field of [`Options`] is honoured here; files (overwriting,
/// `--resume`) are [`crate::upscale`]'s business.
pub fn run(
    source: Box<dyn RowSource>,
    sink: &mut dyn TileSink,
    opts: &Options,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    Job::prepare(source.as_ref(), sink, opts)?.execute(source, sink, progress)
}

/// The output's metadata: the input's EXIF and XMP, and its resolution — `dpi` when given,
/// else the input's scaled with the image (so that the print size stays), else none.
fn output_metadata(
    m: &crate::pixel::Metadata,
    dpi: Option<f64>,
    input: (u32, u32),
    (ow, oh): (u32, u32),
) -> crate::pixel::Metadata {
    let dpi = m.output_dpi(dpi, input, (ow, oh));
    let orientation = m.orientation.unwrap_or(1);
    let exif = m.exif.as_ref().map(|e| crate::exif::updated(e, dpi, (ow, oh), orientation));
    let xmp = m.xmp.as_ref().map(|x| crate::exif::xmp_with_orientation(x, orientation));
    crate::pixel::Metadata { dpi, exif, xmp, ..m.clone() }
}
