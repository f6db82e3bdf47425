//! Pixel layouts and image descriptions shared by every stage.

/// Bits per sample. 16-bit data stays 16-bit end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Depth {
    /// 8 bits per sample.
    U8,
    /// 16 bits per sample, stored in native byte order inside the store.
    U16,
}

impl Depth {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            Depth::U8 => 1,
            Depth::U16 => 2,
        }
    }
    /// Largest sample value (255 or 65535).
    pub fn max_value(self) -> u32 {
        match self {
            Depth::U8 => 255,
            Depth::U16 => 65535,
        }
    }
    /// Sample `i` of a store row (16-bit samples in native byte order).
    pub fn read(self, row: &[u8], i: usize) -> u32 {
        match self {
            Depth::U8 => row[i] as u32,
            Depth::U16 => u16::from_ne_bytes([row[2 * i], row[2 * i + 1]]) as u32,
        }
    }
    /// Writes sample `i` of a store row (`v` within [`Depth::max_value`]).
    pub fn write(self, row: &mut [u8], i: usize, v: u32) {
        match self {
            Depth::U8 => row[i] = v as u8,
            Depth::U16 => row[2 * i..2 * i + 2].copy_from_slice(&(v as u16).to_ne_bytes()),
        }
    }
    /// Bits per sample.
    pub fn bits(self) -> u32 {
        self.bytes() as u32 * 8
    }
}

/// Channel arrangement. Alpha, when present, is always the last channel and unassociated
/// (straight) in files; it is premultiplied only while resampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channels {
    /// One grey channel.
    Gray,
    /// Grey plus alpha.
    GrayAlpha,
    /// Red, green, blue.
    Rgb,
    /// Red, green, blue, alpha.
    Rgba,
}

impl Channels {
    /// Number of channels.
    pub fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::GrayAlpha => 2,
            Channels::Rgb => 3,
            Channels::Rgba => 4,
        }
    }
    /// Whether the last channel is alpha.
    pub fn has_alpha(self) -> bool {
        matches!(self, Channels::GrayAlpha | Channels::Rgba)
    }
    /// Short lowercase name (`gray`, `gray+alpha`, `rgb`, `rgba`).
    pub fn name(self) -> &'static str {
        match self {
            Channels::Gray => "gray",
            Channels::GrayAlpha => "gray+alpha",
            Channels::Rgb => "rgb",
            Channels::Rgba => "rgba",
        }
    }
}

/// A pixel layout: channels and depth.
///
/// ```
/// use gigascale::{Layout, Channels, Depth};
/// let l = Layout::new(Channels::Rgba, Depth::U16);
/// assert_eq!(l.bytes_per_pixel(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Layout {
    /// Channel arrangement.
    pub channels: Channels,
    /// Sample depth.
    pub depth: Depth,
}

impl Layout {
    /// A layout from its parts.
    pub fn new(channels: Channels, depth: Depth) -> Self {
        Layout { channels, depth }
    }
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        self.channels.count() * self.depth.bytes()
    }
}

/// Source image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG (any bit depth, interlaced or not).
    Png,
    /// TIFF or BigTIFF.
    Tiff,
    /// Pixels handed over in memory ([`crate::source::MemorySource`]).
    Memory,
    /// A source of the caller's own (procedural images, other decoders).
    Custom,
}

impl Format {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Tiff => "tiff",
            Format::Memory => "memory",
            Format::Custom => "custom",
        }
    }
}

/// What a reader knows about its image before decoding pixels.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel layout delivered to the store.
    pub layout: Layout,
    /// Container format.
    pub format: Format,
    /// Embedded ICC profile, carried to the output.
    pub icc_profile: Option<Vec<u8>>,
    /// Human-readable details (tiling, compression, interlacing, progressive...).
    pub details: Vec<(String, String)>,
    /// Resolution, EXIF and XMP, carried to the output.
    pub metadata: Metadata,
}

/// What an image carries besides its pixels and ICC profile, carried into the output: its
/// resolution (scaled with the image, so that its print size stays, or set with `--dpi`),
/// its EXIF block and its XMP packet.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Metadata {
    /// Pixels per inch, horizontally and vertically, if the file says.
    pub dpi: Option<(f64, f64)>,
    /// The EXIF block: a TIFF structure (byte order mark, IFD0, ...), without JPEG's
    /// `Exif\0\0` prefix.
    pub exif: Option<Vec<u8>>,
    /// The XMP packet (UTF-8 XML).
    pub xmp: Option<Vec<u8>>,
    /// How the pixels are to be shown (TIFF/EXIF Orientation, 1-8; 1 = as stored), from the
    /// EXIF block or a TIFF's own tag. [`crate::source::open`] applies it to the pixels and
    /// clears it; a source that keeps it (a library user's own) has it written to the output.
    pub orientation: Option<u16>,
}

/// A 16-bit sample rounded to 8 bits (for outputs that hold 8 bits only: JPEG, WebP).
pub(crate) fn round_to_8(s: u16) -> u8 {
    ((s as u32 * 255 + 32767) / 65535) as u8
}

impl Metadata {
    /// The resolution of an `output`-sized enlargement of an `input`-sized image with this
    /// metadata: `dpi` when given, else this resolution scaled with the image (so that the
    /// print size stays), else none.
    ///
    /// ```
    /// use gigascale::Metadata;
    /// let mut m = Metadata::default();
    /// m.dpi = Some((300.0, 300.0));
    /// assert_eq!(m.output_dpi(None, (100, 50), (200, 100)), Some((600.0, 600.0)));
    /// assert_eq!(m.output_dpi(Some(150.0), (100, 50), (200, 100)), Some((150.0, 150.0)));
    /// assert_eq!(Metadata::default().output_dpi(None, (100, 50), (200, 100)), None);
    /// ```
    pub fn output_dpi(&self, dpi: Option<f64>, (iw, ih): (u32, u32), (ow, oh): (u32, u32)) -> Option<(f64, f64)> {
        let scaled = self.dpi.map(|(x, y)| (x * ow as f64 / iw.max(1) as f64, y * oh as f64 / ih.max(1) as f64));
        dpi.map(|d| (d, d)).or(scaled)
    }
}

impl ImageInfo {
    /// An image of `width x height` pixels of `layout` from `format`, with no ICC profile and
    /// no details (set those fields afterwards if there are any).
    ///
    /// ```
    /// use gigascale::{ImageInfo, Layout, Channels, Depth, Format};
    /// let i = ImageInfo::new(4000, 3000, Layout::new(Channels::Rgb, Depth::U8), Format::Custom);
    /// assert_eq!(i.row_bytes(), 12000);
    /// ```
    pub fn new(width: u32, height: u32, layout: Layout, format: Format) -> ImageInfo {
        ImageInfo {
            width,
            height,
            layout,
            format,
            icc_profile: None,
            details: Vec::new(),
            metadata: Metadata::default(),
        }
    }
    /// Bytes in one decoded row.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.layout.bytes_per_pixel()
    }
    /// Bytes of the whole decoded image, or `None` on overflow.
    pub fn total_bytes(&self) -> Option<u64> {
        (self.width as u64).checked_mul(self.height as u64)?.checked_mul(self.layout.bytes_per_pixel() as u64)
    }
}
