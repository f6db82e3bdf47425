//! TIFF image file directories: the tags of a tiled image, and their encoding (classic or
//! BigTIFF), with values too large to sit in an entry written out of line before the IFD.

use super::{Compression, OutputFile, SinkHeader};
use crate::error::{Error, Result};
use crate::pixel::Channels;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const ASCII: u16 = 2;
const UNDEFINED: u16 = 7;
const BYTE: u16 = 1;
const RATIONAL: u16 = 5;
const LONG8: u16 = 16;

/// One IFD entry: tag, field type, value count and the value's little-endian bytes.
pub(super) struct Entry {
    tag: u16,
    typ: u16,
    count: u64,
    data: Vec<u8>,
}

fn shorts(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn short(tag: u16, v: u16) -> Entry {
    Entry { tag, typ: SHORT, count: 1, data: shorts(&[v]) }
}

fn long(tag: u16, v: u32) -> Entry {
    Entry { tag, typ: LONG, count: 1, data: v.to_le_bytes().to_vec() }
}

/// An offset or byte-count table: LONG8 in BigTIFF, LONG in classic TIFF.
fn table(tag: u16, v: &[u64], big: bool) -> Entry {
    let (typ, data) = if big {
        (LONG8, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    } else {
        (LONG, v.iter().flat_map(|&x| (x as u32).to_le_bytes()).collect())
    };
    Entry { tag, typ, count: v.len() as u64, data }
}

/// The entries of a tiled image of `h`, with its tiles at `offsets` and `counts` bytes long,
/// in ascending tag order. `icc` is written only where given; a reduced-resolution level
/// (`reduced`) is marked with NewSubfileType 1.
pub(super) fn tiled_image(
    h: &SinkHeader,
    c: Compression,
    (offsets, counts): (&[u64], &[u64]),
    big: bool,
    reduced: bool,
) -> Vec<Entry> {
    let spp = h.layout.channels.count() as u16;
    let bits = h.layout.depth.bits() as u16;
    let photometric = match h.layout.channels {
        Channels::Gray | Channels::GrayAlpha => 1,
        _ => 2,
    };
    let sw = format!("gigascale {}\0", env!("CARGO_PKG_VERSION"));
    let mut e = Vec::new();
    if reduced {
        e.push(long(254, 1));
    }
    e.extend([
        long(256, h.width),
        long(257, h.height),
        Entry { tag: 258, typ: SHORT, count: spp as u64, data: shorts(&vec![bits; spp as usize]) },
        short(259, c.tiff_code()),
        short(262, photometric),
        short(277, spp),
        short(284, 1),
        Entry { tag: 305, typ: ASCII, count: sw.len() as u64, data: sw.into_bytes() },
    ]);
    if c != Compression::None {
        e.push(short(317, 2));
    }
    e.push(long(322, h.tile));
    e.push(long(323, h.tile));
    e.push(table(324, offsets, big));
    e.push(table(325, counts, big));
    if h.layout.channels.has_alpha() {
        e.push(short(338, 2));
    }
    e.push(Entry { tag: 339, typ: SHORT, count: spp as u64, data: shorts(&vec![1; spp as usize]) });
    if let Some(icc) = &h.icc_profile {
        e.push(Entry { tag: 34675, typ: UNDEFINED, count: icc.len() as u64, data: icc.clone() });
    }
    if let Some((x, y)) = h.metadata.dpi {
        // XResolution, YResolution (pixels per inch, to a thousandth), ResolutionUnit = inch.
        let rational = |tag: u16, v: f64| {
            let n = (v * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32;
            Entry { tag, typ: RATIONAL, count: 1, data: [n.to_le_bytes(), 1000u32.to_le_bytes()].concat() }
        };
        e.extend([rational(282, x), rational(283, y), short(296, 2)]);
    }
    if let Some(o) = h.metadata.orientation.filter(|&o| o != 1) {
        e.push(short(274, o));
    }
    if let Some(xmp) = &h.metadata.xmp {
        e.push(Entry { tag: 700, typ: BYTE, count: xmp.len() as u64, data: xmp.clone() });
    }
    // An IFD's entries are sorted by tag.
    e.sort_by_key(|x| x.tag);
    e
}

/// `entries` with the fields `extra` added where their tags are not there already, in tag
/// order.
pub(super) fn merged(mut entries: Vec<Entry>, extra: Vec<crate::exif::Field>) -> Vec<Entry> {
    for f in extra {
        if !entries.iter().any(|e| e.tag == f.tag) {
            entries.push(Entry { tag: f.tag, typ: f.typ, count: f.count as u64, data: f.data });
        }
    }
    entries.sort_by_key(|x| x.tag);
    entries
}

/// A pointer to a sub-directory written at `at` (Exif 34665, GPS 34853): IFD8 in BigTIFF,
/// LONG in classic TIFF.
pub(super) fn sub_ifd(tag: u16, at: u64, big: bool) -> crate::exif::Field {
    if big {
        crate::exif::Field { tag, typ: 18, count: 1, data: at.to_le_bytes().to_vec() }
    } else {
        crate::exif::Field { tag, typ: LONG, count: 1, data: (at as u32).to_le_bytes().to_vec() }
    }
}

/// Appends `entries` to `out`: out-of-line values first (word aligned), then the IFD, whose
/// next-IFD link is zero. Returns the IFD's offset and its link's.
pub(super) fn write(out: &mut OutputFile, entries: &[Entry], big: bool) -> Result<(u64, u64)> {
    let inline = if big { 8 } else { 4 };
    let mut value_offsets = vec![0u64; entries.len()];
    for (i, ent) in entries.iter().enumerate() {
        if ent.data.len() > inline {
            if out.pos() % 2 == 1 {
                out.write_all(&[0])?;
            }
            value_offsets[i] = out.pos();
            out.write_all(&ent.data)?;
        }
    }
    if out.pos() % 2 == 1 {
        out.write_all(&[0])?;
    }
    let ifd = out.pos();
    if !big && ifd > u32::MAX as u64 {
        return Err(Error::limit(
            "classic TIFF offset",
            ifd,
            u32::MAX as u64,
            Some("BigTIFF should have been chosen".into()),
        ));
    }
    let bytes = encode(entries, &value_offsets, big);
    out.write_all(&bytes)?;
    Ok((ifd, ifd + bytes.len() as u64 - inline as u64))
}

/// The IFD's bytes: entry count, entries (inline values or offsets), a zero next-IFD link.
fn encode(entries: &[Entry], value_offsets: &[u64], big: bool) -> Vec<u8> {
    let inline = if big { 8 } else { 4 };
    let mut buf = Vec::new();
    if big {
        buf.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    } else {
        buf.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    }
    for (ent, &at) in entries.iter().zip(value_offsets) {
        buf.extend_from_slice(&ent.tag.to_le_bytes());
        buf.extend_from_slice(&ent.typ.to_le_bytes());
        let mut val = match (ent.data.len() > inline, big) {
            (true, true) => at.to_le_bytes().to_vec(),
            (true, false) => (at as u32).to_le_bytes().to_vec(),
            (false, _) => ent.data.clone(),
        };
        val.resize(inline, 0);
        if big {
            buf.extend_from_slice(&ent.count.to_le_bytes());
        } else {
            buf.extend_from_slice(&(ent.count as u32).to_le_bytes());
        }
        buf.extend_from_slice(&val);
    }
    buf.extend_from_slice(&vec![0u8; inline]); // no next IFD
    buf
}
