//! EXIF blocks carried from the input to the output, brought up to date: the resolution in
//! IFD0 (XResolution, YResolution, in ResolutionUnit) and the pixel size in the Exif IFD
//! (PixelXDimension, PixelYDimension) are rewritten in place for the output, and so is the
//! Orientation (1 once the pixels were turned upright); everything else (camera, dates,
//! lens...) is kept byte for byte. A block that cannot be parsed is
//! carried unchanged: it was the input's, and no reader of ours depends on it.

/// A TIFF structure's byte order.
#[derive(Clone, Copy)]
struct Order {
    little: bool,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(v) } else { u16::from_be_bytes(v) })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
    }
    fn put_u16(self, b: &mut [u8], at: usize, v: u16) {
        let bytes = if self.little { v.to_le_bytes() } else { v.to_be_bytes() };
        if let Some(dst) = b.get_mut(at..at + 2) {
            dst.copy_from_slice(&bytes);
        }
    }
    fn put_u32(self, b: &mut [u8], at: usize, v: u32) {
        let bytes = if self.little { v.to_le_bytes() } else { v.to_be_bytes() };
        if let Some(dst) = b.get_mut(at..at + 4) {
            dst.copy_from_slice(&bytes);
        }
    }
}

/// The byte order of a TIFF structure from its first two bytes (`II` or `MM`).
fn byte_order(b: &[u8]) -> Option<Order> {
    match b.get(..2)? {
        b"II" => Some(Order { little: true }),
        b"MM" => Some(Order { little: false }),
        _ => None,
    }
}

/// One IFD entry: tag, type, count, and where its 4-byte value field is.
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    field: usize,
}

/// The entries of the IFD at `at` (at most 1000, within the block).
fn entries(b: &[u8], o: Order, at: usize) -> Vec<Entry> {
    let n = o.u16(b, at).unwrap_or(0).min(1000) as usize;
    (0..n)
        .filter_map(|i| {
            let e = at + 2 + 12 * i;
            Some(Entry { tag: o.u16(b, e)?, typ: o.u16(b, e + 2)?, count: o.u32(b, e + 4)?, field: e + 8 })
        })
        .collect()
}

/// The Orientation (tag 274) of an EXIF block's IFD0, if it has a valid one (1-8).
pub(crate) fn orientation(exif: &[u8]) -> Option<u16> {
    let o = byte_order(exif)?;
    let ifd0 = o.u32(exif, 4)? as usize;
    let e = entries(exif, o, ifd0).into_iter().find(|e| e.tag == 274 && e.typ == 3)?;
    o.u16(exif, e.field).filter(|v| (1..=8).contains(v))
}

/// A resolution as a RATIONAL at `at`: thousandths (at least 1) over 1000.
fn put_resolution(o: Order, b: &mut [u8], at: usize, value: f64) {
    o.put_u32(b, at, (value * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32);
    o.put_u32(b, at + 4, 1000);
}

/// A little-endian EXIF block holding only a resolution: IFD0 with XResolution, YResolution
/// (`dpi`, pixels per inch, to a thousandth) and ResolutionUnit (inch) — for formats whose only
/// place for a resolution is EXIF (WebP) when the input brought none.
pub(crate) fn resolution_only((x, y): (f64, f64)) -> Vec<u8> {
    let o = Order { little: true };
    let mut b = vec![0u8; 8 + 2 + 3 * 12 + 4 + 16];
    b[..2].copy_from_slice(b"II");
    o.put_u16(&mut b, 2, 42);
    o.put_u32(&mut b, 4, 8);
    o.put_u16(&mut b, 8, 3);
    let values = 8 + 2 + 3 * 12 + 4;
    for (i, (tag, typ, field)) in
        [(282u16, 5u16, values as u32), (283, 5, values as u32 + 8), (296, 3, 2)].into_iter().enumerate()
    {
        let at = 10 + 12 * i;
        o.put_u16(&mut b, at, tag);
        o.put_u16(&mut b, at + 2, typ);
        o.put_u32(&mut b, at + 4, 1);
        o.put_u32(&mut b, at + 8, field);
    }
    for (i, v) in [x, y].into_iter().enumerate() {
        put_resolution(o, &mut b, values + 8 * i, v);
    }
    b
}

/// `exif` with its resolution set to `dpi` (pixels per inch, x and y), its pixel size to
/// `size` and its orientation (if it has one) to `orientation`.
pub(crate) fn updated(exif: &[u8], dpi: Option<(f64, f64)>, size: (u32, u32), orientation: u16) -> Vec<u8> {
    let mut b = exif.to_vec();
    let Some((o, ifd0)) = byte_order(&b).and_then(|o| Some((o, o.u32(&b, 4)?))) else { return b };
    let ifd0 = entries(&b, o, ifd0 as usize);
    let unit = ifd0.iter().find(|e| e.tag == 296).and_then(|e| o.u16(&b, e.field)).unwrap_or(2);
    let per_unit = if unit == 3 { 1.0 / 2.54 } else { 1.0 };
    for e in &ifd0 {
        if e.tag == 274 && e.typ == 3 && e.count == 1 {
            o.put_u16(&mut b, e.field, orientation);
        }
        let value = match (e.tag, dpi) {
            (282, Some((x, _))) => x,
            (283, Some((_, y))) => y,
            _ => continue,
        };
        // RATIONAL, one value, stored at the offset in the field.
        if e.typ == 5 && e.count == 1 {
            if let Some(at) = o.u32(&b, e.field) {
                put_resolution(o, &mut b, at as usize, value * per_unit);
            }
        }
    }
    let exif_ifd = ifd0.iter().find(|e| e.tag == 34665).and_then(|e| o.u32(&b, e.field));
    for e in exif_ifd.map(|at| entries(&b, o, at as usize)).unwrap_or_default() {
        let v = match e.tag {
            0xA002 => size.0,
            0xA003 => size.1,
            _ => continue,
        };
        match (e.typ, e.count) {
            (3, 1) if v <= u16::MAX as u32 => o.put_u16(&mut b, e.field, v as u16),
            (4, 1) => o.put_u32(&mut b, e.field, v),
            _ => {}
        }
    }
    b
}

/// A field carried from an EXIF block into a TIFF's directories: tag, type, count and value
/// (little-endian, as our TIFFs are written).
pub(crate) struct Field {
    pub(crate) tag: u16,
    pub(crate) typ: u16,
    pub(crate) count: u32,
    pub(crate) data: Vec<u8>,
}

/// What an EXIF block gives a TIFF output: IFD0's descriptive fields (description, make,
/// model, date, artist, copyright), and the Exif and GPS sub-directories' fields.
pub(crate) struct TiffFields {
    pub(crate) ifd0: Vec<Field>,
    pub(crate) exif: Vec<Field>,
    pub(crate) gps: Vec<Field>,
}

/// IFD0 tags worth carrying into a TIFF that describes its own pixels.
const DESCRIPTIVE: [u16; 6] = [270, 271, 272, 306, 315, 33432];
/// The largest field value carried (a camera's maker note is a few tens of KiB).
const MAX_FIELD: usize = 1 << 20;

/// The bytes of one value unit of TIFF field type `typ` (0 for types we do not know), and the
/// width of the numbers it is made of (for byte swapping).
fn unit(typ: u16) -> (usize, usize) {
    match typ {
        1 | 2 | 6 | 7 => (1, 1),
        3 | 8 => (2, 2),
        4 | 9 | 11 => (4, 4),
        5 | 10 => (8, 4),
        12 => (8, 8),
        _ => (0, 0),
    }
}

/// The fields of the IFD at `at` accepted by `keep`, their values little-endian (fields that
/// lie outside the block, or of unknown types, are dropped).
fn fields(b: &[u8], o: Order, at: usize, keep: impl Fn(u16) -> bool) -> Vec<Field> {
    let mut out = Vec::new();
    for e in entries(b, o, at).into_iter().filter(|e| keep(e.tag)) {
        let (size, word) = unit(e.typ);
        let len = size.saturating_mul(e.count as usize);
        if size == 0 || len == 0 || len > MAX_FIELD {
            continue;
        }
        let start = if len <= 4 { e.field } else { o.u32(b, e.field).unwrap_or(u32::MAX) as usize };
        let Some(value) = b.get(start..start.saturating_add(len)) else { continue };
        let mut data = value.to_vec();
        if !o.little && word > 1 {
            data.chunks_exact_mut(word).for_each(<[u8]>::reverse);
        }
        out.push(Field { tag: e.tag, typ: e.typ, count: e.count, data });
    }
    out
}

/// The fields of `exif` for a TIFF output (None if the block cannot be parsed).
pub(crate) fn tiff_fields(exif: &[u8]) -> Option<TiffFields> {
    let o = byte_order(exif)?;
    let ifd0 = o.u32(exif, 4)? as usize;
    let top = entries(exif, o, ifd0);
    let sub = |tag: u16, keep: &dyn Fn(u16) -> bool| {
        let at = top.iter().find(|e| e.tag == tag).and_then(|e| o.u32(exif, e.field));
        at.map(|at| fields(exif, o, at as usize, keep)).unwrap_or_default()
    };
    let mut exif_fields = sub(34665, &|t| t != 40965);
    // The pixel size as LONG: EXIF allows SHORT, libtiff's definition takes LONG only.
    for f in exif_fields.iter_mut().filter(|f| matches!(f.tag, 0xA002 | 0xA003) && f.typ == 3 && f.count == 1) {
        let v = u16::from_le_bytes([f.data[0], f.data[1]]) as u32;
        (f.typ, f.data) = (4, v.to_le_bytes().to_vec());
    }
    Some(TiffFields {
        ifd0: fields(exif, o, ifd0, |t| DESCRIPTIVE.contains(&t)),
        // Everything but the Interoperability pointer (its directory is not carried).
        exif: exif_fields,
        gps: sub(34853, &|_| true),
    })
}

/// `xmp` with its `tiff:Orientation` (attribute or element) set to `orientation`: once the
/// pixels are turned upright, the XMP must not tell viewers to turn them again.
pub(crate) fn xmp_with_orientation(xmp: &[u8], orientation: u16) -> Vec<u8> {
    let mut out = xmp.to_vec();
    for (open, close) in
        [(&b"tiff:Orientation=\""[..], b'"'), (b"tiff:Orientation='", b'\''), (b"<tiff:Orientation>", b'<')]
    {
        let mut from = 0;
        while let Some(i) = out[from..].windows(open.len()).position(|w| w == open) {
            let start = from + i + open.len();
            let Some(len) = out[start..].iter().position(|&c| c == close) else { break };
            let digits = out[start..start + len].iter().all(u8::is_ascii_digit);
            if digits && len > 0 {
                out.splice(start..start + len, orientation.to_string().bytes());
            }
            from = start;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little EXIF block: IFD0 with XResolution, YResolution, ResolutionUnit and an Exif
    /// IFD pointer; the Exif IFD with PixelXDimension (SHORT) and PixelYDimension (LONG).
    fn block(little: bool) -> Vec<u8> {
        let o = Order { little };
        let mut b = vec![0u8; 128];
        b[..2].copy_from_slice(if little { b"II" } else { b"MM" });
        o.put_u16(&mut b, 2, 42);
        o.put_u32(&mut b, 4, 8);
        o.put_u16(&mut b, 8, 4);
        // One entry (count 1, the value inline) at byte `at`.
        let entry = |b: &mut Vec<u8>, at: usize, tag: u16, typ: u16, value: u32| {
            o.put_u16(b, at, tag);
            o.put_u16(b, at + 2, typ);
            o.put_u32(b, at + 4, 1);
            if typ == 3 {
                o.put_u16(b, at + 8, value as u16)
            } else {
                o.put_u32(b, at + 8, value)
            }
        };
        entry(&mut b, 10, 282, 5, 80);
        entry(&mut b, 22, 283, 5, 88);
        entry(&mut b, 34, 296, 3, 2);
        entry(&mut b, 46, 34665, 4, 96);
        for (at, v) in [(80, 72), (84, 1), (88, 72), (92, 1)] {
            o.put_u32(&mut b, at, v);
        }
        o.put_u16(&mut b, 96, 2);
        entry(&mut b, 98, 0xA002, 3, 150);
        entry(&mut b, 110, 0xA003, 4, 100);
        b
    }

    #[test]
    fn a_resolution_alone_makes_a_block_our_reader_reads_back() {
        let b = resolution_only((300.0, 150.5));
        let o = Order { little: true };
        let ifd0 = entries(&b, o, 8);
        let rational = |tag: u16| {
            let e = ifd0.iter().find(|e| e.tag == tag && e.typ == 5 && e.count == 1).unwrap();
            let at = o.u32(&b, e.field).unwrap() as usize;
            o.u32(&b, at).unwrap() as f64 / o.u32(&b, at + 4).unwrap() as f64
        };
        assert_eq!((rational(282), rational(283)), (300.0, 150.5));
        assert!(ifd0.iter().any(|e| e.tag == 296 && o.u16(&b, e.field) == Some(2)));
    }

    #[test]
    fn resolution_and_pixel_size_are_rewritten_in_either_byte_order() {
        for little in [true, false] {
            let o = Order { little };
            let out = updated(&block(little), Some((600.0, 300.0)), (1500, 1000), 1);
            assert_eq!((o.u32(&out, 80), o.u32(&out, 84)), (Some(600_000), Some(1000)));
            assert_eq!((o.u32(&out, 88), o.u32(&out, 92)), (Some(300_000), Some(1000)));
            assert_eq!(o.u16(&out, 98 + 8), Some(1500));
            assert_eq!(o.u32(&out, 110 + 8), Some(1000));
            assert_eq!(out.len(), block(little).len(), "in place");
            assert_eq!(orientation(&out), None, "no Orientation entry");
        }
        assert_eq!(updated(b"not exif", Some((1.0, 1.0)), (1, 1), 1), b"not exif");
        let mut b = block(true);
        let o = Order { little: true };
        // Replace ResolutionUnit's entry by Orientation = 6 (rotate 90° clockwise to show).
        o.put_u16(&mut b, 34, 274);
        o.put_u16(&mut b, 34 + 8, 6);
        assert_eq!(orientation(&b), Some(6));
        let cut = &block(true)[..50];
        assert_eq!(updated(cut, Some((600.0, 600.0)), (1, 1), 1).len(), 50, "a cut block is left as it is");
        assert_eq!(orientation(&updated(&b, None, (1, 1), 1)), Some(1), "the orientation reset");
    }

    #[test]
    fn fields_for_a_tiff_come_little_endian_from_either_order() {
        for little in [true, false] {
            let f = tiff_fields(&block(little)).unwrap();
            assert!(f.ifd0.is_empty(), "no descriptive field in the block");
            let dims: Vec<(u16, Vec<u8>)> = f.exif.into_iter().map(|x| (x.tag, x.data)).collect();
            assert_eq!(dims, vec![(0xA002, 150u32.to_le_bytes().to_vec()), (0xA003, 100u32.to_le_bytes().to_vec())]);
            assert!(f.gps.is_empty());
        }
        assert!(tiff_fields(b"not exif").is_none());
    }

    #[test]
    fn xmp_orientation_is_reset_as_attribute_or_element() {
        let x = br#"<rdf:Description tiff:Orientation="6" tiff:Make='x'/><tiff:Orientation>8</tiff:Orientation>"#;
        let want = br#"<rdf:Description tiff:Orientation="1" tiff:Make='x'/><tiff:Orientation>1</tiff:Orientation>"#;
        assert_eq!(xmp_with_orientation(x, 1), want);
        assert_eq!(xmp_with_orientation(b"no tag", 1), b"no tag");
    }
}
