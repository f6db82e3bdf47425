//! The neural stage: one pass of a model from one scratch store to the next, tile by tile.
//!
//! Output tiles of `tile·scale` pixels are computed one at a time, each from its window of the
//! input (the tile's source span plus the model's halo, extended at the image's borders by
//! the model's [`Border`](super::Border) rule), with every layer spread over the thread pool.
//! A band of output rows is written to the next store as soon as its tiles are done, and input
//! rows no later band reads are released, so resident memory is bounded by the tile, not the
//! image. The exact engine makes every tile size and thread count give the same bytes.
//!
//! Layouts: grey inputs are replicated to RGB and the network's RGB output is turned back to
//! grey as the rounded mean of its three channels; 16-bit samples enter the network at its
//! 14-bit input precision and leave it rounded to 16 bits; alpha does not go through the
//! network: it is enlarged by the resampler with the bicubic filter (as the reference programs
//! do), on the same tiles.

pub(crate) use super::device_pass::{fit_device, grow_beside_device, plan_beside_device};
use super::exact::Exact;
use super::graph::Graph;
pub(crate) use super::pass_plan::{
    device_bytes, largest_window, leave_to_driver, plan_pass, recompute_warning, DeviceLimits, PassPlan,
};

#[cfg_attr(not(feature = "gpu"), allow(unused_imports))]
pub(crate) use super::pass_plan::{split_bytes, split_geometry, SPLIT_RUN};
use super::reference;
use super::reference::Tensor;
use super::se_pass;
use super::Model;
use crate::error::{Error, Result};
use crate::kernel::Filter;
use crate::pixel::{Channels, Depth, ImageInfo, Layout};
use crate::plan::Plan;
use crate::progress::Event;
use crate::resample::{self, Scratch};
use crate::store::Store;
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tiles whose SE sums are submitted to a discrete device and not yet read
/// ([`se_pass::scales_in_flight`]), as the tiles of the pass: the device works on one while the
/// host records the next. (On an adapter whose buffers are host memory, one: there the queued
/// work's memory is the process's, and the same processor runs both sides.)
const SE_IN_FLIGHT: usize = 2;

/// Whether `GIGASCALE_TRACE_NEURAL` is set: then the stage prints where each tile's time
/// goes (window, recording, device, placing) on stderr, for benchmarks.
pub(crate) fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GIGASCALE_TRACE_NEURAL").is_some())
}

/// A network input sample: `v / max` as the network's integers (1.0 = `2^14`), rounded.
pub(crate) fn to_fixed(v: u32, max: u32) -> i32 {
    ((v as i64 * (1 << 15) + max as i64) / (2 * max as i64)) as i32
}

/// A network output `q / 2^e` as a sample of `0..=max`, rounded half up, clamped.
pub(crate) fn from_fixed(q: i32, e: i32, max: u32) -> u32 {
    let v = q.max(0) as i64 * 2 * max as i64;
    let r = if e >= 0 { (v + (1i64 << e)) >> (e + 1) } else { (v << -e) >> 1 };
    r.min(max as i64) as u32
}

/// How a tile's network output becomes output samples: the crop `(x, y, w, h)` of the output
/// tensor, the output's fixed-point exponent, the samples' maximum, grey (the rounded mean of
/// the three channels) or RGB, and bytes per sample. The samples are `h` rows of
/// `w · channels` samples in the store's byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Samples {
    pub crop: (usize, usize, usize, usize),
    pub exponent: i32,
    pub max: u32,
    pub grey: bool,
    pub bps: usize,
}

impl Samples {
    /// Channels per pixel: 1 for grey, 3 for RGB.
    pub(crate) fn channels(&self) -> usize {
        if self.grey {
            1
        } else {
            3
        }
    }

    /// Bytes of one row of samples.
    pub(crate) fn row_bytes(&self) -> usize {
        self.crop.2 * self.channels() * self.bps
    }

    /// The samples of `out` into `dst` (`crop.3` rows of [`Samples::row_bytes`]); the GPU's
    /// `samples` shader computes the same bytes on the device.
    pub(crate) fn convert(&self, out: &Tensor<i16>, dst: &mut [u8]) {
        let (x, y, w, _) = self.crop;
        let (plane, depth) = (out.h * out.w, if self.bps == 1 { Depth::U8 } else { Depth::U16 });
        let fixed = |i: usize| from_fixed(out.data[i] as i32, self.exponent, self.max);
        dst.par_chunks_mut(self.row_bytes()).enumerate().for_each(|(yy, row)| {
            let base = (y + yy) * out.w + x;
            for xx in 0..w {
                let i = base + xx;
                let v = [fixed(i), fixed(plane + i), fixed(2 * plane + i)];
                if self.grey {
                    depth.write(row, xx, (v[0] + v[1] + v[2] + 1) / 3);
                } else {
                    (0..3).for_each(|c| depth.write(row, xx * 3 + c, v[c]));
                }
            }
        });
    }
}

/// Something that runs a whole network of the exact engine on one input window and gives
/// what [`reference::run_with`] with [`Exact`] and then [`Samples::convert`] give, bit for
/// bit (the GPU).
pub(crate) trait NetDevice: Sync + Send {
    /// Where the network runs, for the `neural_start` event: `gpu <adapter>`.
    fn describe(&self) -> String;
    /// What the device can hold (`memory`: `--gpu-memory` when given, else the device's own
    /// default).
    fn limits(&self, gpu_memory: Option<u64>) -> DeviceLimits;
    /// Gets ready to run `g` on input windows up to `window` (a tensor with that window and no
    /// data): compiles what it needs, uploads the weights, allocates the buffers; on at most
    /// `threads` threads (each holds its own compiler's memory while it works).
    fn prepare(&self, g: &Graph, ex: &Exact, window: Tensor<i16>, threads: usize) -> Result<()>;
    /// Starts `g` on `input` with the SE blocks' multipliers `scales`, its output to be
    /// converted as `samples(output window)` says; returns at once.
    fn submit(
        &self,
        g: &Graph,
        ex: &Exact,
        input: Tensor<i16>,
        scales: &reference::SeScales,
        samples: &dyn Fn(&Tensor<i16>) -> Result<Samples>,
    ) -> Result<Ticket>;
    /// Runs `g` on `input` with the SE blocks' multipliers so far up to blob `stop`, and sums
    /// that blob's values per channel over the window `owned` names for the blob's window;
    /// returns at once, with that window (the sums come with [`NetDevice::finish_prefix_sums`]:
    /// what [`Exact::run_prefix`] and [`reference::sums_with`] give, exactly).
    fn submit_prefix_sums(
        &self,
        g: &Graph,
        ex: &Exact,
        input: (Tensor<i16>, &reference::SeScales),
        stop: usize,
        owned: &dyn Fn(&Tensor<i16>) -> Result<reference::Window>,
    ) -> Result<(Ticket, reference::Window)>;
    /// Waits for submitted sums: per channel, in the blob's integer units.
    fn finish_prefix_sums(&self, ticket: Ticket) -> Result<Vec<i64>>;
    /// Waits for a submitted tile and hands its samples to `take`.
    fn finish(&self, ticket: Ticket, take: &mut dyn FnMut(&[u8])) -> Result<()>;
    /// What keeps the device itself open once this is dropped (its buffers freed), so that
    /// the tile stage, opening a device on the same adapter, shares it instead of opening
    /// another.
    fn device_handle(&self) -> Box<dyn std::any::Any + Send>;
}

/// A tile submitted to a [`NetDevice`].
pub(crate) type Ticket = Box<dyn std::any::Any + Send>;

/// A tile under way: on the device, or already computed on the CPU (its samples).
enum Flight {
    Device(Ticket),
    Host(Vec<u8>),
}

/// One pass, ready to run.
pub(crate) struct Pass<'a> {
    pub model: &'a Model,
    pub exact: &'a Exact,
    pub input: &'a Store,
    pub info: &'a ImageInfo,
    pub plan: PassPlan,
    pub temp_dir: &'a Path,
    pub cancel: Option<&'a AtomicBool>,
    /// This pass's number (from 1) and the number of passes, for progress.
    pub number: (u32, u32),
    /// The threads every layer is spread over.
    pub pool: &'a rayon::ThreadPool,
    /// Where the network runs instead of the CPU (the GPU), if anywhere.
    pub device: Option<&'a dyn NetDevice>,
    /// Seconds spent running the network (the rest of a pass: reading windows, placing and
    /// writing results, alpha).
    pub network_s: std::cell::Cell<f64>,
}

/// Output pixels `(x, y, w, h)`.
type Rect = (usize, usize, usize, usize);

/// The output tiles of edge `t` over an output of `(ow, oh)` pixels, row by row.
pub(crate) fn tile_rects((ow, oh): (usize, usize), t: usize) -> impl Iterator<Item = Rect> {
    (0..oh).step_by(t).flat_map(move |y| (0..ow).step_by(t).map(move |x| (x, y, t.min(ow - x), t.min(oh - y))))
}

/// The padded input window output pixels `rect` read from `store`, as the network's integers
/// (on the current thread pool).
fn input_window(model: &Model, store: &Store, info: &ImageInfo, rect: Rect) -> Tensor<i16> {
    let (w, h) = (info.width as usize, info.height as usize);
    let layout = info.layout;
    let (ch, max) = (layout.channels.count(), layout.depth.max_value());
    let window = model.input_window(w, h, rect);
    let read = |x: usize, y: usize, c: usize| {
        let c = if ch < 3 { 0 } else { c };
        to_fixed(layout.depth.read(store.row(y), x * ch + c), max) as i16
    };
    model.padded(w, h, window, read)
}

impl Pass<'_> {
    fn scale(&self) -> usize {
        self.model.graph.scale
    }
    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Runs the pass into a new store (the image `scale` times larger, same layout).
    pub(crate) fn run(&self, progress: &mut dyn FnMut(&Event)) -> Result<Store> {
        let (w, h, s) = (self.info.width as usize, self.info.height as usize, self.scale());
        let layout = self.info.layout;
        let (ow, oh) = (w * s, h * s);
        let row_bytes = ow * layout.bytes_per_pixel();
        let t_pass = std::time::Instant::now();
        let at = |what: &str| {
            if tracing() {
                eprintln!("neural trace: at {:.3} s: {what}", t_pass.elapsed().as_secs_f64());
            }
        };
        let mut out = Store::create(self.temp_dir, row_bytes, oh)?;
        at("output store made");
        let alpha = self.alpha_plane()?;
        let t = self.plan.tile * s;
        let total = (ow.div_ceil(t) * oh.div_ceil(t)) as u64;
        let (pass, passes) = self.number;
        let mut scratch = Scratch::default();
        // One alpha tile, reused (only its valid pixels are read).
        let mut alpha_tile = if alpha.is_some() { vec![0u8; t * t * layout.depth.bytes()] } else { Vec::new() };
        let mut done = 0;
        let scales = self.se_scales(t)?;
        // One tile is in flight on the device while the next one's window is read and
        // submitted; then the first is read back and placed while the device works.
        let mut pending: Option<(Flight, Rect)> = None;
        for next in tile_rects((ow, oh), t).map(Some).chain([None]) {
            if self.cancelled() {
                return Err(Error::Interrupted { signal: None });
            }
            let started = match next {
                Some(rect) => {
                    let f = self.start(rect, &scales)?;
                    at("tile submitted");
                    Some((f, rect))
                }
                None => None,
            };
            let Some((flight, rect)) = std::mem::replace(&mut pending, started) else { continue };
            if matches!(flight, Flight::Device(_)) {
                // While the device works, the tile's pages of the store are mapped in (they
                // become resident when it is placed anyway): placing then only copies.
                let (t0, bpp) = (std::time::Instant::now(), layout.bytes_per_pixel());
                self.pool.install(|| out.prefault(rect.1..rect.1 + rect.3, rect.0 * bpp..(rect.0 + rect.2) * bpp));
                if tracing() {
                    eprintln!("neural trace: tile's rows mapped in {:.3} s", t0.elapsed().as_secs_f64());
                }
            }
            // The store's rows of the tile (full width): where its samples go.
            let rows = out.rows_mut(rect.1..rect.1 + rect.3);
            self.land(flight, rect, rows)?;
            at("tile landed");
            if let Some((plane, plan)) = &alpha {
                let job = plan.tile(done);
                resample::resample_tile(plan, plane, &job, &mut scratch, &mut alpha_tile);
                place_alpha(&alpha_tile, t, rect, layout, rows);
            }
            done += 1;
            progress(&Event::Neural { pass, passes, done, total });
            if rect.0 + rect.2 == ow {
                // The band of tiles is done: its rows go back to the scratch file, and input
                // rows above the next band's windows are not read again.
                out.release_rows(rect.1..rect.1 + rect.3);
                let next =
                    ((rect.1 + rect.3) / s).saturating_sub(self.model.border.width() + self.model.graph.halo + 2);
                self.input.release_rows(0..next.min(h));
                at("band released");
            }
        }
        at("pass done");
        Ok(out)
    }

    /// The SE blocks' multipliers for this image (none for most models), from runs of the
    /// network's first layers on the tiles of edge `t` (see `se_pass.rs`).
    fn se_scales(&self, t: usize) -> Result<reference::SeScales> {
        let g = &self.model.graph;
        if !g.has_se() {
            return Ok(reference::SeScales::new());
        }
        let (w, h, s) = (self.info.width as usize, self.info.height as usize, self.scale());
        let (ow, oh) = (w * s, h * s);
        let rects: Vec<Rect> = tile_rects((ow, oh), t).collect();
        let geo = self.model.se_geometry(w, h);
        let (model, store, info, cancel, device) = (self.model, self.input, self.info, self.cancel, self.device);
        let exact = self.exact;
        let window = |rect: Rect| {
            let t = std::time::Instant::now();
            let input = input_window(model, store, info, rect);
            if tracing() {
                eprintln!("neural trace: SE window of {rect:?} read in {:.3} s", t.elapsed().as_secs_f64());
            }
            input
        };
        let mut each = || match cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            true => Err(Error::Interrupted { signal: None }),
            false => Ok(()),
        };
        let t0 = std::time::Instant::now();
        let scales = match device {
            Some(d) => {
                let start = |rect, scales: &reference::SeScales, b, owned: se_pass::Owned<'_>| {
                    let (ticket, window) = d.submit_prefix_sums(g, exact, (window(rect), scales), b, owned)?;
                    Ok(((ticket, b), window))
                };
                let finish =
                    |(ticket, b): (Ticket, usize)| Ok(exact.sums_in_real_units(&d.finish_prefix_sums(ticket)?, b));
                let depth = if d.limits(None).host { 1 } else { SE_IN_FLIGHT };
                self.pool.install(|| se_pass::scales_in_flight(g, geo, &rects, (&start, &finish, depth), &mut each))
            }
            None => {
                let run = |rect, scales: &reference::SeScales, stop| {
                    exact.run_prefix(g, window(rect), scales, stop).map_err(Error::Internal)
                };
                let sums = |t: &reference::Tensor<i32>, win, b| exact.prefix_sums(t, win, b);
                self.pool.install(|| se_pass::scales(g, &sums, geo, &rects, &run, &mut each))
            }
        };
        self.add_network(t0.elapsed().as_secs_f64());
        scales
    }

    /// Output pixels `rect` (of the cropped output): reads their input window and submits the
    /// network to the device, or runs it on the CPU.
    fn start(&self, rect: Rect, scales: &reference::SeScales) -> Result<Flight> {
        let (w, h) = (self.info.width as usize, self.info.height as usize);
        let layout = self.info.layout;
        let (ch, max) = (layout.channels.count(), layout.depth.max_value());
        let (model, store, info) = (self.model, self.input, self.info);
        let t = std::time::Instant::now();
        let input = self.pool.install(|| input_window(model, store, info, rect));
        if tracing() {
            eprintln!("neural trace: window of {rect:?} read in {:.3} s", t.elapsed().as_secs_f64());
        }
        let (g, t) = (&self.model.graph, std::time::Instant::now());
        let samples = |out: &Tensor<i16>| {
            let (ox, oy) = self.model.origin(w, h, out, rect)?;
            let (exponent, bps) = (self.exact.exponent(g.output), layout.depth.bytes());
            Ok(Samples { crop: (ox, oy, rect.2, rect.3), exponent, max, grey: ch < 3, bps })
        };
        let flight = match self.device {
            Some(device) => Flight::Device(device.submit(g, self.exact, input, scales, &samples)?),
            None => {
                let out = self
                    .pool
                    .install(|| self.exact.run_in_strips(g, input, scales, super::tail::TAIL_BLOB_BYTES))
                    .map_err(Error::Internal)?;
                let s = samples(&out)?;
                let mut bytes = vec![0u8; s.row_bytes() * rect.3];
                self.pool.install(|| s.convert(&out, &mut bytes));
                Flight::Host(bytes)
            }
        };
        self.add_network(t.elapsed().as_secs_f64());
        Ok(flight)
    }

    /// Places tile `rect`'s samples (waiting for the device if it is there) in `rows`, the
    /// store's rows of the tile.
    fn land(&self, flight: Flight, rect: Rect, rows: &mut [u8]) -> Result<()> {
        let layout = self.info.layout;
        let (t, placing) = (std::time::Instant::now(), std::cell::Cell::new(0.0));
        let mut place = |bytes: &[u8]| {
            let t = std::time::Instant::now();
            self.pool.install(|| place_color(bytes, rect, layout, rows));
            placing.set(placing.get() + t.elapsed().as_secs_f64());
        };
        match flight {
            Flight::Device(ticket) => match self.device {
                Some(device) => device.finish(ticket, &mut place)?,
                None => return Err(Error::Internal("a device tile without a device".into())),
            },
            Flight::Host(bytes) => place(&bytes),
        }
        self.add_network(t.elapsed().as_secs_f64() - placing.get());
        if tracing() {
            eprintln!("neural trace: tile {rect:?} landed, placing {:.3} s", placing.get());
        }
        Ok(())
    }

    fn add_network(&self, s: f64) {
        self.network_s.set(self.network_s.get() + s);
    }

    /// For layouts with alpha: the alpha channel as a grey store, and the resampler's plan
    /// that enlarges it by the model's scale on the same tiles.
    fn alpha_plane(&self) -> Result<Option<(Store, Plan)>> {
        let layout = self.info.layout;
        if !matches!(layout.channels, Channels::GrayAlpha | Channels::Rgba) {
            return Ok(None);
        }
        let (w, h, s) = (self.info.width, self.info.height, self.scale() as u32);
        let (ch, bps) = (layout.channels.count(), layout.depth.bytes());
        let mut plane = Store::create(self.temp_dir, w as usize * bps, h as usize)?;
        for y in 0..h as usize {
            let src = self.input.row(y);
            for (x, dst) in plane.row_mut(y).chunks_exact_mut(bps).enumerate() {
                dst.copy_from_slice(&src[(x * ch + ch - 1) * bps..][..bps]);
            }
        }
        let gray = Layout::new(Channels::Gray, layout.depth);
        let plan = Plan::new(w, h, w * s, h * s, Filter::Bicubic, gray, (self.plan.tile * s as usize) as u32)?;
        Ok(Some((plane, plan)))
    }
}

/// Copies the colour samples of output pixels `rect` (rows of `tw` pixels of 1 or 3 samples,
/// as [`Samples`] makes them) into `rows` (the store's `th` rows of the tile), leaving alpha
/// to [`place_alpha`].
fn place_color(bytes: &[u8], (x0, _, tw, th): Rect, layout: Layout, rows: &mut [u8]) {
    let (ch, bps, rb) = (layout.channels.count(), layout.depth.bytes(), rows.len() / th);
    let colors = if ch < 3 { 1 } else { 3 };
    let src_row = tw * colors * bps;
    rows.par_chunks_mut(rb).zip(bytes.par_chunks(src_row)).for_each(|(row, src)| {
        let dst = &mut row[x0 * ch * bps..][..tw * ch * bps];
        if colors == ch {
            dst.copy_from_slice(src);
        } else {
            for (d, s) in dst.chunks_exact_mut(ch * bps).zip(src.chunks_exact(colors * bps)) {
                d[..colors * bps].copy_from_slice(s);
            }
        }
    });
}

/// Copies the alpha of output pixels `rect` from the resampler's tile `buf` (`t x t` grey,
/// 16-bit little-endian) into the last channel of `rows` (the store's rows of the tile).
fn place_alpha(buf: &[u8], t: usize, (x0, _, tw, th): Rect, layout: Layout, rows: &mut [u8]) {
    let (ch, bps, rb) = (layout.channels.count(), layout.depth.bytes(), rows.len() / th);
    for yy in 0..th {
        for xx in 0..tw {
            let src = &buf[(yy * t + xx) * bps..][..bps];
            let at = yy * rb + ((x0 + xx) * ch + ch - 1) * bps;
            let v = if bps == 1 { src[0] as u32 } else { u16::from_le_bytes([src[0], src[1]]) as u32 };
            layout.depth.write(&mut rows[at..at + bps], 0, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pass_plan::{device_bytes, tile_window};
    use super::*;
    #[test]
    fn fixed_point_conversions_round_trip() {
        for v in 0..=255 {
            assert_eq!(from_fixed(to_fixed(v, 255), 14, 255), v);
        }
        for v in (0..=65535).step_by(7) {
            let back = from_fixed(to_fixed(v, 65535), 14, 65535) as i64;
            assert!((back - v as i64).abs() <= 2, "{v} -> {back}");
        }
        assert_eq!((from_fixed(-5, 14, 255), from_fixed(1 << 15, 14, 255)), (0, 255));
    }

    #[test]
    fn small_tiles_of_a_wide_halo_are_warned_about() {
        use super::super::pass_plan::recompute_factor;
        let m = Model::builtin("photo").unwrap();
        // Whole-image tiles compute each pixel once.
        assert!((recompute_factor(&m, (400, 300), 2048) - 1.0).abs() < 1e-9);
        // 16-px tiles read 7 + 1 + 1 px past each side: (16 + 18) / 16 per axis.
        let f = recompute_factor(&m, (400, 300), 16);
        assert!((4.0..5.0).contains(&f), "{f}");
        let rgb = Layout::new(Channels::Rgb, Depth::U8);
        let w = recompute_warning(&m, (400, 300), rgb, 16, 2).expect("a warning for 16-px tiles");
        assert!(w.contains("photo") && w.contains("tiles of 96 px") && w.contains("--max-memory"), "{w}");
        assert_eq!(recompute_warning(&m, (400, 300), rgb, 64, 2), None);
    }

    #[test]
    fn device_memory_decides_the_tile_when_it_is_smaller() {
        let m = Model::builtin("photo").unwrap();
        let rgb = Layout::new(Channels::Rgb, Depth::U8);
        let bytes: Vec<u64> = [16, 32, 64].map(|t| device_bytes(&m, (400, 300), rgb, t, false)).to_vec();
        eprintln!("{bytes:?}");
        assert!(bytes[0] < bytes[1] && bytes[1] < bytes[2]);
        let plan = |d| plan_pass(&m, (400, 300), rgb, 2, (1 << 30, Some(d)));
        assert_eq!(plan(bytes[1]).unwrap().tile, 32);
        assert_eq!(plan(bytes[1] - 1).unwrap().tile, 16);
        let e = plan(bytes[0] - 1).unwrap_err().to_string();
        assert!(e.contains("--gpu-memory"), "{e}");
        assert_eq!(plan_pass(&m, (400, 300), rgb, 2, (1 << 30, None)).unwrap().tile, 2048);
    }

    /// A small x2 network through ncnn's bicubic Interp: up by 4, down by 2 (as
    /// realesr-animevideov3-x2 does), with convolutions around; weights from a fixed pattern.
    fn interp_model() -> Model {
        let param = "7767517\n5 5\nInput data 0 1 data 2=3\n\
                     Convolution c1 1 1 data a 0=4 1=3 4=1 5=1 6=108 9=1\n\
                     Interp up 1 1 a b 0=3 1=4.0 2=4.0\n\
                     Convolution c2 1 1 b c 0=3 1=3 4=1 5=1 6=108\n\
                     Interp down 1 1 c out 0=3 1=0.5 2=0.5\n";
        let mut bin = Vec::new();
        for n in [108 + 4, 108 + 3] {
            bin.extend(0u32.to_le_bytes());
            (0..n).for_each(|i| bin.extend(((i % 7) as f32 * 0.05 - 0.1).to_le_bytes()));
        }
        Model::from_parts("interp", param, &bin).unwrap()
    }

    #[test]
    fn the_dry_run_window_fits_the_planned_bound() {
        // The device's dry run fills its buffer pool over `largest_window`: a window no tile
        // exceeds, also where a tile's reach covers the whole image (the late blobs of a
        // whole-image window were 4 GB for realesrgan-x4plus on a 1000x1000 image).
        let models = [Model::builtin("photo").unwrap(), Model::builtin("anime").unwrap(), interp_model()];
        for m in &models {
            for (w, h, tile) in [(45, 37, 16), (45, 37, 32), (80, 20, 16), (30, 30, 48)] {
                let span = tile_window(m, (w as u32, h as u32), tile);
                let t = largest_window(m, (w, h), tile);
                let window = [(t.x0, t.x0 + t.w), (t.y0, t.y0 + t.h)];
                let input = m.padded(w, h, window, |x, y, c| ((x + y + c) % 7) as f32 / 7.0);
                let mut check = |b: usize, t: &Tensor<f32>| {
                    let (values, bound) = ((t.c * t.w * t.h) as u64, m.graph.blob_values(b, span));
                    assert!(values <= bound, "{} {w}x{h} tile {tile}: blob {b}: {values} > {bound}", m.name);
                };
                reference::run_with(&m.graph, &reference::Float, input, &mut check).unwrap();
            }
        }
    }

    #[test]
    fn every_blob_of_every_tile_fits_its_planned_bound() {
        let models = [Model::builtin("photo").unwrap(), Model::builtin("anime").unwrap(), interp_model()];
        let (w, h) = (45, 37);
        for m in &models {
            for tile in [16, 32] {
                let span = tile_window(m, (w as u32, h as u32), tile);
                let n = tile * m.graph.scale;
                let (ow, oh) = (w * m.graph.scale, h * m.graph.scale);
                let mut largest = vec![0u64; m.graph.blobs];
                for y in (0..oh).step_by(n) {
                    for x in (0..ow).step_by(n) {
                        let rect = (x, y, n.min(ow - x), n.min(oh - y));
                        let window = m.input_window(w, h, rect);
                        let input = m.padded(w, h, window, |x, y, c| ((x * 3 + y * 5 + c) % 11) as f32 / 10.0);
                        let mut check = |b: usize, t: &Tensor<f32>| {
                            let (values, bound) = ((t.c * t.w * t.h) as u64, m.graph.blob_values(b, span));
                            assert!(values <= bound, "{}: blob {b} of tile {rect:?}: {values} > {bound}", m.name);
                            largest[b] = largest[b].max(values);
                        };
                        reference::run_with(&m.graph, &reference::Float, input, &mut check).unwrap();
                    }
                }
                // The bound is near what the windows are (the input window's size scaled would be
                // 14x anime's last blobs on these tiles; the border's slack is most of what is
                // left); blobs folded away (an activation's) are never made.
                let made = (0..m.graph.blobs).filter(|&b| largest[b] > 0);
                let ratio = made.map(|b| m.graph.blob_values(b, span) as f64 / largest[b] as f64);
                let worst = ratio.fold(0.0, f64::max);
                eprintln!("{}: bound / largest window <= {worst:.2}", m.name);
                assert!(worst < 3.0, "{}: {worst}", m.name);
            }
        }
    }
}
