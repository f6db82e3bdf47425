//! Tile compression for TIFF: none, deflate (zlib stream, TIFF code 8), LZW (code 5) and
//! zstd (code 50000), each with the horizontal differencing predictor (TIFF predictor 2).

use crate::error::{Error, Result};
use crate::pixel::{Depth, Layout};
use crate::plan::TileJob;

/// Compression of TIFF tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed.
    None,
    /// Deflate (zlib), with horizontal predictor.
    Deflate,
    /// LZW, with horizontal predictor.
    Lzw,
    /// Zstandard, with horizontal predictor.
    Zstd,
}

impl Compression {
    /// The TIFF Compression tag value.
    pub fn tiff_code(self) -> u16 {
        match self {
            Compression::None => 1,
            Compression::Lzw => 5,
            Compression::Deflate => 8,
            Compression::Zstd => 50000,
        }
    }
    /// Every compression, in the command line's order.
    pub const ALL: [Compression; 4] = [Compression::None, Compression::Deflate, Compression::Lzw, Compression::Zstd];

    /// The command line's name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Deflate => "deflate",
            Compression::Lzw => "lzw",
            Compression::Zstd => "zstd",
        }
    }
    /// Parses a name ([`Compression::name`]).
    pub fn from_name(s: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == s)
    }
    /// Default level (deflate 6, zstd 3); `None` for codecs without levels. Deflate is
    /// libdeflate, whose levels run 0 (stored) to 12 (slowest, smallest).
    pub fn default_level(self) -> Option<i32> {
        match self {
            Compression::Deflate => Some(6),
            Compression::Zstd => Some(3),
            _ => None,
        }
    }
    /// Valid level range.
    pub fn level_range(self) -> Option<(i32, i32)> {
        match self {
            Compression::Deflate => Some((0, 12)),
            Compression::Zstd => Some((1, 22)),
            _ => None,
        }
    }
    /// Worst-case encoded size of `raw` bytes.
    pub fn bound(self, raw: usize) -> usize {
        match self {
            Compression::None => raw,
            // libdeflate's bound (5 bytes per block of at least 5000 bytes, stored) plus the
            // zlib wrapper, rounded up generously.
            Compression::Deflate => raw + raw / 1000 + 128,
            Compression::Lzw => raw / 2 * 3 + 64,
            Compression::Zstd => zstd::zstd_safe::compress_bound(raw),
        }
    }
    /// Working memory of one encoder.
    pub fn encoder_memory(self, level: i32) -> u64 {
        match self {
            Compression::None => 0,
            Compression::Deflate => 1 << 20,
            Compression::Lzw => 96 << 10,
            // A zstd context for a tile-sized input; grows with level.
            Compression::Zstd => {
                if level <= 5 {
                    2 << 20
                } else {
                    8 << 20
                }
            }
        }
    }
    /// A new encoder for tiles of `layout` that are `tile` pixels wide.
    pub fn encoder(self, level: i32, layout: Layout, tile: u32) -> Box<dyn TileEncoder> {
        match self {
            Compression::None => Box::new(super::Raw),
            c => Box::new(Compressor { c, level, layout, tile, zstd: None, lzw: None, deflate: None }),
        }
    }
}

/// Turns a raw tile into the bytes stored in the file. Runs on worker threads.
pub trait TileEncoder: Send {
    /// Encodes `raw` (which it may modify, e.g. by applying a predictor) into `out`.
    fn encode(&mut self, job: &TileJob, raw: &mut [u8], out: &mut Vec<u8>) -> Result<()>;
    /// True when the encoder copies `raw` unchanged (the executor then skips the copy).
    fn passthrough(&self) -> bool {
        false
    }
}

struct Compressor {
    c: Compression,
    level: i32,
    layout: Layout,
    tile: u32,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    lzw: Option<super::lzw::Lzw>,
    deflate: Option<libdeflater::Compressor>,
}

/// TIFF predictor 2: each sample minus the same channel of the previous pixel, per row.
pub(crate) fn horizontal_predict(buf: &mut [u8], layout: Layout, width: usize) {
    let ch = layout.channels.count();
    match layout.depth {
        Depth::U8 => {
            // From the end in blocks of 32 bytes: each block reads its own bytes and the `ch`
            // before them (all still unmodified) before writing, so the loop vectorises.
            const B: usize = 32;
            for row in buf.chunks_exact_mut(width * ch) {
                let mut end = row.len();
                while end >= ch + B {
                    let start = end - B;
                    let mut cur = [0u8; B];
                    let mut prev = [0u8; B];
                    cur.copy_from_slice(&row[start..end]);
                    prev.copy_from_slice(&row[start - ch..end - ch]);
                    for (c, p) in cur.iter_mut().zip(prev) {
                        *c = c.wrapping_sub(p);
                    }
                    row[start..end].copy_from_slice(&cur);
                    end = start;
                }
                for i in (ch..end).rev() {
                    row[i] = row[i].wrapping_sub(row[i - ch]);
                }
            }
        }
        Depth::U16 => {
            for row in buf.chunks_exact_mut(width * ch * 2) {
                for i in (ch..row.len() / 2).rev() {
                    let a = u16::from_le_bytes([row[2 * i], row[2 * i + 1]]);
                    let b = u16::from_le_bytes([row[2 * (i - ch)], row[2 * (i - ch) + 1]]);
                    row[2 * i..2 * i + 2].copy_from_slice(&a.wrapping_sub(b).to_le_bytes());
                }
            }
        }
    }
}

/// Undoes [`horizontal_predict`].
fn horizontal_unpredict(buf: &mut [u8], layout: Layout, width: usize) {
    let ch = layout.channels.count();
    match layout.depth {
        Depth::U8 => {
            for row in buf.chunks_exact_mut(width * ch) {
                for i in ch..row.len() {
                    row[i] = row[i].wrapping_add(row[i - ch]);
                }
            }
        }
        Depth::U16 => {
            for row in buf.chunks_exact_mut(width * ch * 2) {
                for i in ch..row.len() / 2 {
                    let a = u16::from_le_bytes([row[2 * i], row[2 * i + 1]]);
                    let b = u16::from_le_bytes([row[2 * (i - ch)], row[2 * (i - ch) + 1]]);
                    row[2 * i..2 * i + 2].copy_from_slice(&a.wrapping_add(b).to_le_bytes());
                }
            }
        }
    }
}

/// The raw `tile x tile` pixels of a tile this module's encoder made with `c` (to rebuild
/// state from a partial file on resume).
pub(crate) fn decode_tile(c: Compression, data: &[u8], layout: Layout, tile: u32) -> Result<Vec<u8>> {
    let len = tile as usize * tile as usize * layout.bytes_per_pixel();
    let bad = |what: String| Error::io("<tile decoder>", std::io::Error::other(what));
    let mut raw = match c {
        Compression::None => data.to_vec(),
        Compression::Zstd => zstd::bulk::decompress(data, len).map_err(|e| bad(format!("zstd: {e}")))?,
        Compression::Deflate => {
            let mut out = vec![0u8; len];
            let n = libdeflater::Decompressor::new()
                .zlib_decompress(data, &mut out)
                .map_err(|e| bad(format!("deflate: {e:?}")))?;
            out.truncate(n);
            out
        }
        Compression::Lzw => weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .decode(data)
            .map_err(|e| bad(format!("lzw: {e}")))?,
    };
    if raw.len() != len {
        return Err(bad(format!("a {}-byte tile decoded to {} bytes, not {len}", data.len(), raw.len())));
    }
    if c != Compression::None {
        horizontal_unpredict(&mut raw, layout, tile as usize);
    }
    Ok(raw)
}

impl TileEncoder for Compressor {
    fn encode(&mut self, _job: &TileJob, raw: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
        horizontal_predict(raw, self.layout, self.tile as usize);
        out.clear();
        let cerr = |e: std::io::Error| Error::io("<tile encoder>", e);
        match self.c {
            Compression::Deflate => {
                let level = self.level;
                let z = match &mut self.deflate {
                    Some(z) => z,
                    none => none.insert(libdeflater::Compressor::new(
                        libdeflater::CompressionLvl::new(level)
                            .map_err(|e| cerr(std::io::Error::other(format!("{e:?}"))))?,
                    )),
                };
                out.resize(z.zlib_compress_bound(raw.len()), 0);
                let n = z.zlib_compress(raw, out).map_err(|e| cerr(std::io::Error::other(e.to_string())))?;
                out.truncate(n);
            }
            Compression::Lzw => {
                self.lzw.get_or_insert_with(super::lzw::Lzw::new).encode(raw, out);
            }
            Compression::Zstd => {
                if self.zstd.is_none() {
                    self.zstd = Some(zstd::bulk::Compressor::new(self.level).map_err(cerr)?);
                }
                let z = self.zstd.as_mut().expect("created above");
                out.reserve(Compression::Zstd.bound(raw.len()));
                z.compress_to_buffer(&raw[..], out).map_err(cerr)?;
            }
            Compression::None => out.extend_from_slice(raw),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::Channels;

    #[test]
    fn every_codec_decodes_what_it_encoded() {
        let mut rng = crate::digest::Lcg(99);
        for layout in [Layout::new(Channels::Rgb, Depth::U8), Layout::new(Channels::GrayAlpha, Depth::U16)] {
            let tile = 32u32;
            let raw: Vec<u8> = (0..tile as usize * tile as usize * layout.bytes_per_pixel())
                .map(|i| ((i / 7) as u8).wrapping_add((rng.next() >> 62) as u8))
                .collect();
            for c in [Compression::None, Compression::Deflate, Compression::Lzw, Compression::Zstd] {
                let mut enc = c.encoder(c.default_level().unwrap_or(0), layout, tile);
                let (mut work, mut out) = (raw.clone(), Vec::new());
                let r = crate::plan::Rect { x: 0, y: 0, w: tile, h: tile };
                enc.encode(&TileJob { index: 0, out: r, src: r }, &mut work, &mut out).unwrap();
                assert_eq!(decode_tile(c, &out, layout, tile).unwrap(), raw, "{c:?} {layout:?}");
            }
        }
    }

    #[test]
    fn blocked_predictor_equals_the_sample_by_sample_definition() {
        let mut rng = crate::digest::Lcg(12345);
        for ch in [Channels::Gray, Channels::GrayAlpha, Channels::Rgb, Channels::Rgba] {
            let layout = Layout::new(ch, Depth::U8);
            let n = ch.count();
            for width in [1usize, 5, 16, 33, 256] {
                let raw = rng.bytes(width * n * 3);
                let mut want = raw.clone();
                for row in want.chunks_exact_mut(width * n) {
                    for i in (n..row.len()).rev() {
                        row[i] = row[i].wrapping_sub(row[i - n]);
                    }
                }
                let mut got = raw;
                horizontal_predict(&mut got, layout, width);
                assert_eq!(got, want, "{ch:?} width {width}");
            }
        }
    }
}
