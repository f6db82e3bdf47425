//! Shared test helpers: the binary, fixtures and scratch directories, the command's output,
//! one pseudo-random generator, in-memory source and sink, random images, and an independent
//! f64 reference resampler; the small ncnn models of `nets.rs`, re-exported.
#![allow(dead_code)]

use gigascale::sink::{Raw, SinkHeader, TileEncoder, TileSink};
use gigascale::source::MemorySource;
use gigascale::{Channels, Depth, Filter, Layout, Options, TileJob};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::nets::*;

/// The `gigascale` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gigascale"))
}

/// `gigascale ARGS`, run to the end.
pub fn gs(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// A bundled fixture (fixtures/README.md: provenance and licences).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// A fresh, empty scratch directory for one test: named after the calling test file and
/// `name`, so that tests of different files never share one.
#[track_caller]
pub fn scratch(name: &str) -> PathBuf {
    let file = Path::new(std::panic::Location::caller().file());
    let area = file.file_stem().map_or("tests".into(), |s| s.to_string_lossy().into_owned());
    let d = std::env::temp_dir().join(format!("gigascale-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A scratch directory removed when dropped (whether the test passes or not).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// [`scratch`], removed at the end.
    #[track_caller]
    pub fn new(name: &str) -> TempDir {
        TempDir(scratch(name))
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Python of the reader checks: `$GIGASCALE_PYTHON` (CI: a virtual environment with
/// zarr, ome-zarr-models, Dask, moto and tifffile; .ci/run makes it), else `python3`.
pub fn python_bin() -> String {
    std::env::var("GIGASCALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// For a test that needs the process to itself (one that counts the process's threads): in
/// the test binary, where tests run in parallel, it runs `test` (its full name) again in a
/// process of its own, asserts that it passed there, and returns `false`; in that process it
/// returns `true` and the test does its work.
#[track_caller]
pub fn alone(test: &str) -> bool {
    if std::env::var_os("GIGASCALE_TEST_ALONE").is_some() {
        return true;
    }
    let me = std::env::current_exe().unwrap();
    let o = Command::new(me)
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env("GIGASCALE_TEST_ALONE", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{test}, alone: {}\n{out}", stderr(&o));
    assert!(out.contains("1 passed"), "{test} did not run alone:\n{out}");
    false
}

/// An 8-bit RGB PNG's width, height and samples.
pub fn read_png(path: &Path) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the command succeeded; its stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}: {}\n{}", o.status, stderr(o), String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `p` as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Runs the binary with `args` under `/usr/bin/time`; its output and peak RSS in bytes.
pub fn measured(args: &[&std::ffi::OsStr]) -> (Output, u64) {
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "/usr/bin/time is needed (Debian package 'time'; .ci/run installs it)");
    let o = Command::new(time)
        .args(["-f", "peak_rss_kb=%M"])
        .arg(env!("CARGO_BIN_EXE_gigascale"))
        .args(args)
        .output()
        .unwrap();
    let err = stderr(&o);
    let kb: u64 =
        err.lines().find_map(|l| l.strip_prefix("peak_rss_kb=")).expect("time's line").trim().parse().unwrap();
    (o, kb * 1024)
}

/// CRC-32 (PNG's), for forging chunks.
pub fn crc32(d: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in d {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// Decodes a TIFF with the tiff crate: size, colour type and samples widened to u16.
pub fn read_tiff(path: &Path) -> (u32, u32, tiff::ColorType, Vec<u16>) {
    let mut d = tiff::decoder::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    let (w, h) = d.dimensions().unwrap();
    let ct = d.colortype().unwrap();
    let data = match d.read_image().unwrap() {
        tiff::decoder::DecodingResult::U8(v) => v.into_iter().map(u16::from).collect(),
        tiff::decoder::DecodingResult::U16(v) => v,
        _ => panic!("unexpected sample type"),
    };
    (w, h, ct, data)
}

pub use gigascale::digest::Lcg;

/// A deterministic PRNG (SplitMix64).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An image with samples as u16 values (8-bit images use 0..=255).
#[derive(Clone, Debug)]
pub struct Img {
    pub w: u32,
    pub h: u32,
    pub layout: Layout,
    pub data: Vec<u16>,
}

impl Img {
    pub fn ch(&self) -> usize {
        self.layout.channels.count()
    }
    pub fn max(&self) -> u32 {
        self.layout.depth.max_value()
    }
    /// Rows in native-endian bytes, as the store holds them.
    pub fn bytes(&self) -> Vec<u8> {
        match self.layout.depth {
            Depth::U8 => self.data.iter().map(|&v| v as u8).collect(),
            Depth::U16 => self.data.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            d => panic!("no test images of {d:?}"),
        }
    }
    /// The image as a row source.
    pub fn source(&self) -> MemorySource {
        MemorySource::new(self.w, self.h, self.layout, self.bytes()).unwrap()
    }
    /// From little-endian tile-order bytes.
    pub fn from_le(w: u32, h: u32, layout: Layout, bytes: &[u8]) -> Img {
        let data = match layout.depth {
            Depth::U8 => bytes.iter().map(|&b| b as u16).collect(),
            Depth::U16 => bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
            d => panic!("no test images of {d:?}"),
        };
        Img { w, h, layout, data }
    }
}

pub const LAYOUTS: [Channels; 4] = [Channels::Gray, Channels::GrayAlpha, Channels::Rgb, Channels::Rgba];

/// Random image: smooth-ish content mixed with noise and hard edges; alpha includes 0 and max.
pub fn random_img(rng: &mut Rng, w: u32, h: u32, layout: Layout) -> Img {
    let max = layout.depth.max_value() as u64;
    let ch = layout.channels.count();
    let mut data = Vec::with_capacity((w * h) as usize * ch);
    let kind = rng.below(3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let v = match kind {
                    0 => rng.below(max + 1),
                    1 => {
                        if (x / 3 + y / 2 + c as u32).is_multiple_of(2) {
                            max
                        } else {
                            rng.below(max / 8 + 1)
                        }
                    }
                    _ => ((x as u64 * 37 + y as u64 * 11 + c as u64 * 101) * max / 400 + rng.below(max / 16 + 1))
                        .min(max),
                };
                let v = if layout.channels.has_alpha() && c == ch - 1 {
                    match rng.below(5) {
                        0 => 0,
                        1 => max,
                        _ => v,
                    }
                } else {
                    v
                };
                data.push(v as u16);
            }
        }
    }
    Img { w, h, layout, data }
}

/// A sink that assembles the whole output in memory (test sizes only).
#[derive(Default)]
pub struct MemSink {
    pub header: Option<SinkHeader>,
    pub pixels: Vec<u8>,
    pub tiles: u64,
}

impl TileSink for MemSink {
    fn begin(&mut self, h: &SinkHeader) -> gigascale::Result<()> {
        self.pixels = vec![0; h.width as usize * h.height as usize * h.layout.bytes_per_pixel()];
        self.header = Some(h.clone());
        Ok(())
    }
    fn encoder(&self) -> gigascale::Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }
    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> gigascale::Result<()> {
        let h = self.header.as_ref().unwrap();
        let bpp = h.layout.bytes_per_pixel();
        assert_eq!(job.index, self.tiles, "tiles must arrive in order");
        for r in 0..job.out.h as usize {
            let src = &data[r * h.tile as usize * bpp..][..job.out.w as usize * bpp];
            let dst = ((job.out.y as usize + r) * h.width as usize + job.out.x as usize) * bpp;
            self.pixels[dst..dst + src.len()].copy_from_slice(src);
        }
        self.tiles += 1;
        Ok(())
    }
    fn finish(&mut self) -> gigascale::Result<u64> {
        Ok(self.pixels.len() as u64)
    }
}

/// Runs the library on `img` in memory and returns the output image.
pub fn run_mem(img: &Img, opts: &Options) -> gigascale::Result<Img> {
    run_mem_report(img, opts).map(|r| r.0)
}

/// [`run_mem`], with the job's report.
#[allow(dead_code)]
pub fn run_mem_report(img: &Img, opts: &Options) -> gigascale::Result<(Img, gigascale::Report)> {
    let mut sink = MemSink::default();
    let rep = gigascale::run(Box::new(img.source()), &mut sink, opts, &mut |_| {})?;
    Ok((Img::from_le(rep.output.0, rep.output.1, img.layout, &sink.pixels), rep))
}

/// The least `--max-memory` (or, with `device`, `--gpu-memory`) with which a model's pass over
/// `img` runs (on 16 px tiles): the figure the library's refusal of a budget too small names.
pub fn least_model_budget(img: &Img, opts: &Options, device: bool) -> u64 {
    let mut o = opts.clone();
    match device {
        true => o.limits.gpu_memory = Some(1 << 20),
        false => o.limits.max_memory = 1 << 20,
    }
    match run_mem(img, &o) {
        Err(gigascale::Error::Limit { needed, what, .. }) => {
            assert!(what.contains("model's pass"), "refused for another reason: {what}");
            needed
        }
        other => panic!("a budget of 1 MiB should be refused, got {:?}", other.map(|i| (i.w, i.h))),
    }
}

// ---------------------------------------------------------------------------------------
// The f64 reference, written independently of src/kernel.

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
    }
}

fn kernel(f: Filter, x: f64) -> f64 {
    let x = x.abs();
    let bc = |b: f64, c: f64| -> f64 {
        if x < 1.0 {
            ((12.0 - 9.0 * b - 6.0 * c) * x.powi(3) + (-18.0 + 12.0 * b + 6.0 * c) * x * x + (6.0 - 2.0 * b)) / 6.0
        } else if x < 2.0 {
            ((-b - 6.0 * c) * x.powi(3)
                + (6.0 * b + 30.0 * c) * x * x
                + (-12.0 * b - 48.0 * c) * x
                + (8.0 * b + 24.0 * c))
                / 6.0
        } else {
            0.0
        }
    };
    match f {
        Filter::Nearest => unreachable!(),
        Filter::Bilinear => (1.0 - x).max(0.0),
        Filter::Bicubic => bc(0.0, 0.5),
        Filter::Mitchell => bc(1.0 / 3.0, 1.0 / 3.0),
        Filter::Lanczos3 => {
            if x < 3.0 {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            }
        }
        other => panic!("no independent reference for {other:?}"),
    }
}

fn support(f: Filter) -> f64 {
    match f {
        Filter::Nearest => 0.5,
        Filter::Bilinear => 1.0,
        Filter::Bicubic | Filter::Mitchell => 2.0,
        Filter::Lanczos3 => 3.0,
        other => panic!("no independent reference for {other:?}"),
    }
}

/// Per output index: (first tap, normalised weights).
pub fn ref_weights(f: Filter, n: u32, m: u32) -> Vec<(usize, Vec<f64>)> {
    let scale = m as f64 / n as f64;
    (0..m)
        .map(|i| {
            if f == Filter::Nearest {
                let j = (((i as f64 + 0.5) / scale).floor() as i64).clamp(0, n as i64 - 1);
                return (j as usize, vec![1.0]);
            }
            let fs = if scale < 1.0 { 1.0 / scale } else { 1.0 };
            let s = support(f) * fs;
            let c = (i as f64 + 0.5) / scale - 0.5;
            let lo = ((c - s).floor() as i64).max(0);
            let hi = ((c + s).ceil() as i64).min(n as i64 - 1);
            let w: Vec<f64> = (lo..=hi).map(|j| kernel(f, (j as f64 - c) / fs)).collect();
            let sum: f64 = w.iter().sum();
            (lo as usize, w.into_iter().map(|v| v / sum).collect())
        })
        .collect()
}

/// The exact filter output in f64: per output pixel, premultiplied values in [0,1] (colour
/// times alpha for layouts with alpha), before any rounding or clamping.
pub fn reference_real(img: &Img, ow: u32, oh: u32, f: Filter) -> Vec<[f64; 4]> {
    let ch = img.ch();
    let d = img.max() as f64;
    let alpha = img.layout.channels.has_alpha();
    let wx = ref_weights(f, img.w, ow);
    let wy = ref_weights(f, img.h, oh);
    let mut src = vec![0f64; img.data.len()];
    for p in 0..(img.w * img.h) as usize {
        let a = if alpha { img.data[p * ch + ch - 1] as f64 / d } else { 1.0 };
        for c in 0..ch {
            let v = img.data[p * ch + c] as f64 / d;
            src[p * ch + c] = if alpha && c + 1 < ch { v * a } else { v };
        }
    }
    let mut tmp = vec![0f64; img.h as usize * ow as usize * ch];
    for y in 0..img.h as usize {
        for (x, (s0, w)) in wx.iter().enumerate() {
            for c in 0..ch {
                tmp[(y * ow as usize + x) * ch + c] =
                    w.iter().enumerate().map(|(k, wk)| wk * src[(y * img.w as usize + s0 + k) * ch + c]).sum();
            }
        }
    }
    let mut out = vec![[0f64; 4]; ow as usize * oh as usize];
    for (y, (s0, w)) in wy.iter().enumerate() {
        for x in 0..ow as usize {
            for c in 0..ch {
                out[y * ow as usize + x][c] =
                    w.iter().enumerate().map(|(k, wk)| wk * tmp[((s0 + k) * ow as usize + x) * ch + c]).sum();
            }
        }
    }
    out
}

/// Reference resample in f64 with alpha premultiplied; returns the output image and, per
/// pixel, the exact alpha in [0,1] (1 without alpha).
pub fn reference(img: &Img, ow: u32, oh: u32, f: Filter) -> (Img, Vec<f64>) {
    let ch = img.ch();
    let d = img.max() as f64;
    let alpha = img.layout.channels.has_alpha();
    let real = reference_real(img, ow, oh, f);
    let mut out = vec![0u16; ow as usize * oh as usize * ch];
    let mut exact_alpha = vec![0f64; ow as usize * oh as usize];
    for (p, v) in real.iter().enumerate() {
        let r = |x: f64| (x * d + 0.5).floor().clamp(0.0, d) as u16;
        if alpha {
            let a = v[ch - 1];
            exact_alpha[p] = a.clamp(0.0, 1.0);
            let ao = r(a);
            out[p * ch + ch - 1] = ao;
            for c in 0..ch - 1 {
                out[p * ch + c] = if ao == 0 { 0 } else { r(v[c] / a) };
            }
        } else {
            exact_alpha[p] = 1.0;
            for c in 0..ch {
                out[p * ch + c] = r(v[c]);
            }
        }
    }
    (Img { w: ow, h: oh, layout: img.layout, data: out }, exact_alpha)
}

pub fn opts_scale(x: f64, y: f64, f: Filter) -> Options {
    let mut o = Options::new(gigascale::Size::Scale { x, y });
    o.filter = f;
    o.limits.max_memory = 256 << 20;
    o.threads = 2;
    o.temp_dir = Some(std::env::temp_dir());
    o
}

/// A photo-like RGB PNG of `w x h` at `path` (gradients, hard edges and noise): compresses like
/// a real upscaled photo, not like flat colour or pure noise.
pub fn photo_png(path: &std::path::Path, w: u32, h: u32) {
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    let mut rng = Lcg(12345);
    for y in 0..h {
        for x in 0..w {
            let n = (rng.next() >> 58) as u32;
            let edge = if (x / 50 + y / 70) % 2 == 0 { 60 } else { 0 };
            px.push(((x * 255 / w) / 2 + edge + n) as u8);
            px.push(((y * 255 / h) / 2 + n) as u8);
            px.push((((x + y) * 255 / (w + h)) / 2 + edge) as u8);
        }
    }
    let mut enc = png::Encoder::new(std::fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
}

/// Reads a binary PNM (P5/P6) as djpeg writes it: width, height, samples.
pub fn read_pnm(b: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&b[start..i]).into_owned());
    }
    (fields[1].parse().unwrap(), fields[2].parse().unwrap(), b[i + 1..].to_vec())
}
