//! The planner: cuts the output into tiles and maps each tile to the source window it reads.
//! The window is the exact source rectangle plus the kernel halo, taken from the coefficient
//! tables ([`AxisCoeffs::input_span`]) — the same taps the backends multiply.

use crate::error::{Error, Result};
use crate::kernel::fixed::{Arith, Intermediate, Precision};
use crate::kernel::{span_bound, table_bytes, AxisCoeffs, Filter};
use crate::pixel::Layout;
use std::ops::Range;

/// An axis-aligned rectangle in pixels (four numbers that will stay four: not
/// `non_exhaustive`, so that it can be written as a literal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// Number of pixels.
    pub fn area(&self) -> u64 {
        self.w as u64 * self.h as u64
    }
}

/// One unit of work: an output tile and the source window it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TileJob {
    /// Position in the plan's tile order: the row-major tile index (the TIFF tile number),
    /// unless the plan is grouped ([`Plan::with_groups`]).
    pub index: u64,
    /// The valid output pixels of this tile (edge tiles are clipped to the image).
    pub out: Rect,
    /// The source pixels it reads, halo included.
    pub src: Rect,
}

/// A job's geometry before any table exists: sizes, tiling and kernel. Every size the memory
/// plan needs (tables, windows, resident source rows) is an analytic upper bound computed from
/// these numbers alone, so an absurd request is refused before anything is allocated.
///
/// ```
/// use gigascale::{Geometry, Filter, Layout, Channels, Depth, Intermediate};
/// let rgb = Layout::new(Channels::Rgb, Depth::U8);
/// let g = Geometry::new((2000, 3000), (30000, 45000), 256, rgb, Filter::Lanczos3, Intermediate::Exact);
/// assert_eq!(g.tile_count(), 118 * 176);
/// assert!(g.coefficient_bytes() < 4 << 20); // 75000 outputs of at most 9 taps
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Geometry {
    /// Source size.
    pub in_size: (u32, u32),
    /// Output size.
    pub out_size: (u32, u32),
    /// Output tile edge.
    pub tile: u32,
    /// Pixel layout (same in and out).
    pub layout: Layout,
    /// Filter.
    pub filter: Filter,
    /// The value between the two passes.
    pub intermediate: Intermediate,
}

impl Geometry {
    /// A geometry: source and output sizes, output tile edge, layout, filter, intermediate.
    pub fn new(
        in_size: (u32, u32),
        out_size: (u32, u32),
        tile: u32,
        layout: Layout,
        filter: Filter,
        intermediate: Intermediate,
    ) -> Geometry {
        Geometry { in_size, out_size, tile, layout, filter, intermediate }
    }

    /// Tiles per row.
    pub fn tiles_across(&self) -> u32 {
        self.out_size.0.div_ceil(self.tile)
    }
    /// Rows of tiles.
    pub fn tiles_down(&self) -> u32 {
        self.out_size.1.div_ceil(self.tile)
    }
    /// Total tile count.
    pub fn tile_count(&self) -> u64 {
        self.tiles_across() as u64 * self.tiles_down() as u64
    }
    /// Bytes of one full output tile buffer.
    pub fn tile_bytes(&self) -> u64 {
        self.tile as u64 * self.tile as u64 * self.layout.bytes_per_pixel() as u64
    }
    /// Bytes of one source row.
    pub fn row_bytes(&self) -> u64 {
        self.in_size.0 as u64 * self.layout.bytes_per_pixel() as u64
    }
    /// Upper bound of both axes' coefficient tables.
    pub fn coefficient_bytes(&self) -> u64 {
        table_bytes(self.filter, self.in_size.0, self.out_size.0).saturating_add(table_bytes(
            self.filter,
            self.in_size.1,
            self.out_size.1,
        ))
    }
    /// Upper bound of the source window (width, height) of `kx` consecutive tiles of a row
    /// of tiles, `ky` rows of tiles high.
    pub fn window_bound(&self, kx: u32, ky: u32) -> (u64, u64) {
        let t = self.tile as u64;
        let w = span_bound(self.filter, self.in_size.0, self.out_size.0, (kx as u64 * t).min(self.out_size.0 as u64));
        let h = span_bound(self.filter, self.in_size.1, self.out_size.1, (ky as u64 * t).min(self.out_size.1 as u64));
        (w, h)
    }
    /// Whether the vertical pass comes first (the rounded intermediate).
    pub fn vertical_first(&self) -> bool {
        Arith::with_mode(self.layout, self.intermediate).vertical_first()
    }
}

/// The whole job's geometry: coefficient tables and tiling.
///
/// ```
/// use gigascale::{Plan, Filter, Layout, Channels, Depth};
/// let plan = Plan::new(100, 50, 1500, 750, Filter::Lanczos3, Layout::new(Channels::Rgb, Depth::U8), 256).unwrap();
/// assert_eq!(plan.tiles_across(), 6);
/// let t = plan.tile(0);
/// assert_eq!((t.out.w, t.out.h), (256, 256));
/// assert_eq!(t.src.x, 0); // clipped at the image edge
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// Sizes, tiling, layout, filter and intermediate.
    pub geom: Geometry,
    /// Horizontal coefficients.
    pub x: AxisCoeffs,
    /// Vertical coefficients.
    pub y: AxisCoeffs,
    /// Fixed-point arithmetic of this layout.
    pub arith: Arith,
    /// Tile order: bands of `.0` rows of tiles, each band cut into groups `.1` tiles wide,
    /// visited group by group, row-major inside a group. `(1, tiles_across)` is row-major.
    groups: (u32, u32),
}

impl Plan {
    /// Builds the plan. `tile` must be a positive multiple of 16.
    pub fn new(
        in_w: u32,
        in_h: u32,
        out_w: u32,
        out_h: u32,
        filter: Filter,
        layout: Layout,
        tile: u32,
    ) -> Result<Plan> {
        if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
            return Err(Error::usage(format!("empty image: {in_w}x{in_h} -> {out_w}x{out_h}")));
        }
        if tile == 0 || !tile.is_multiple_of(16) {
            return Err(Error::usage(format!("--tile {tile}: must be a positive multiple of 16")));
        }
        let prec = Precision::for_depth(layout.depth);
        let table = |n: u32, m: u32| {
            AxisCoeffs::try_new(filter, n, m, prec.w_bits).ok_or_else(|| {
                Error::limit("coefficient table", table_bytes(filter, n, m), 0, Some("cannot allocate it".into()))
            })
        };
        let x = table(in_w, out_w)?;
        let y = table(in_h, out_h)?;
        for (axis, c) in [("x", &x), ("y", &y)] {
            // The fixed-point bounds assume |Σw| < 2; every supported filter stays far below.
            if c.max_abs_sum() >= 2.0 {
                return Err(Error::usage(format!(
                    "filter {} has too much overshoot on the {axis} axis",
                    filter.name()
                )));
            }
        }
        let geom = Geometry {
            in_size: (in_w, in_h),
            out_size: (out_w, out_h),
            tile,
            layout,
            filter,
            intermediate: Intermediate::Exact,
        };
        let groups = (1, geom.tiles_across());
        Ok(Plan { geom, x, y, arith: Arith::new(layout), groups })
    }

    /// The same plan with another intermediate mode (see [`Intermediate`]); the coefficient
    /// tables and tiling do not change.
    ///
    /// ```
    /// use gigascale::{Plan, Filter, Layout, Channels, Depth, Intermediate};
    /// let layout = Layout::new(Channels::Rgb, Depth::U8);
    /// let plan = Plan::new(10, 10, 150, 150, Filter::Bicubic, layout, 64).unwrap()
    ///     .with_intermediate(Intermediate::Rounded);
    /// assert!(plan.arith.vertical_first());
    /// ```
    pub fn with_intermediate(mut self, mode: Intermediate) -> Plan {
        self.arith = Arith::with_mode(self.geom.layout, mode);
        self.geom.intermediate = mode;
        self
    }

    /// The same plan with its tiles visited group by group: bands of `rows` rows of tiles cut
    /// into groups `cols` tiles wide (a shard of a sharded output), row-major inside a group.
    /// Tiles of one band still read one band of source rows.
    ///
    /// ```
    /// use gigascale::{Plan, Filter, Layout, Channels, Depth};
    /// let layout = Layout::new(Channels::Rgb, Depth::U8);
    /// let plan = Plan::new(10, 10, 48, 48, Filter::Bicubic, layout, 16).unwrap().with_groups(2, 2);
    /// let order: Vec<(u32, u32)> = (0..9).map(|i| plan.tile(i)).map(|t| (t.out.x / 16, t.out.y / 16)).collect();
    /// assert_eq!(order, [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1), (0, 2), (1, 2), (2, 2)]);
    /// ```
    pub fn with_groups(mut self, rows: u32, cols: u32) -> Plan {
        self.groups = (rows.clamp(1, self.tiles_down().max(1)), cols.clamp(1, self.tiles_across().max(1)));
        self
    }
    /// Rows of tiles per band of the tile order (1 when row-major).
    pub fn band_rows(&self) -> u32 {
        self.groups.0
    }
    /// Tiles per band of the tile order.
    pub fn band_tiles(&self) -> u64 {
        self.groups.0 as u64 * self.tiles_across() as u64
    }
    /// Bands of the tile order.
    pub fn bands(&self) -> u32 {
        self.tiles_down().div_ceil(self.groups.0)
    }
    /// Tile (column, row) at position `index` of the tile order.
    fn tile_position(&self, index: u64) -> (u32, u32) {
        let (rows, cols) = (self.groups.0 as u64, self.groups.1 as u64);
        let (across, down) = (self.tiles_across() as u64, self.tiles_down() as u64);
        let band = index / (across * rows);
        let band_h = rows.min(down - band * rows);
        let p = index - band * across * rows;
        let group = p / (cols * band_h);
        let group_w = cols.min(across - group * cols);
        let q = p - group * cols * band_h;
        ((group * cols + q % group_w) as u32, (band * rows + q / group_w) as u32)
    }

    /// The plan's [`Geometry`].
    pub fn geometry(&self) -> Geometry {
        self.geom
    }
    /// Tiles per row.
    pub fn tiles_across(&self) -> u32 {
        self.geom.tiles_across()
    }
    /// Rows of tiles.
    pub fn tiles_down(&self) -> u32 {
        self.geom.tiles_down()
    }
    /// Total tile count.
    pub fn tile_count(&self) -> u64 {
        self.geom.tile_count()
    }

    /// Output range of tile column `tx` (or row, with the other axis' size).
    fn span(&self, t: u32, len: u32) -> Range<u32> {
        let a = t * self.geom.tile;
        a..(a + self.geom.tile).min(len)
    }

    /// The job of the tile at position `index` of the tile order (row-major unless grouped).
    pub fn tile(&self, index: u64) -> TileJob {
        let (tx, ty) = self.tile_position(index);
        let ox = self.span(tx, self.geom.out_size.0);
        let oy = self.span(ty, self.geom.out_size.1);
        let sx = self.x.input_span(ox.clone());
        let sy = self.y.input_span(oy.clone());
        TileJob {
            index,
            out: Rect { x: ox.start, y: oy.start, w: ox.len() as u32, h: oy.len() as u32 },
            src: Rect { x: sx.start, y: sy.start, w: sx.len() as u32, h: sy.len() as u32 },
        }
    }

    /// Source rows read by tile rows `rows` (a range of tile-row indices).
    /// Empty (at the bottom edge) when `rows` starts past the last row of tiles.
    pub fn source_rows(&self, rows: Range<u32>) -> Range<u32> {
        if rows.start >= self.tiles_down() {
            return self.geom.in_size.1..self.geom.in_size.1;
        }
        let last = rows.end.min(self.tiles_down()).max(rows.start + 1);
        let a = self.span(rows.start, self.geom.out_size.1).start;
        let b = self.span(last - 1, self.geom.out_size.1).end;
        self.y.input_span(a..b)
    }

    /// Largest source window over all tiles: (width, height).
    pub fn max_window(&self) -> (u32, u32) {
        let w = (0..self.tiles_across())
            .map(|t| self.x.input_span(self.span(t, self.geom.out_size.0)).len())
            .max()
            .unwrap_or(0);
        let h = (0..self.tiles_down())
            .map(|t| self.y.input_span(self.span(t, self.geom.out_size.1)).len())
            .max()
            .unwrap_or(0);
        (w as u32, h as u32)
    }

    /// Largest source window over all runs of `k` consecutive tiles of a row of tiles (a GPU
    /// work unit): (width, height).
    ///
    /// ```
    /// use gigascale::{Plan, Filter, Layout, Channels, Depth};
    /// let plan = Plan::new(100, 50, 1500, 750, Filter::Lanczos3, Layout::new(Channels::Rgb, Depth::U8), 256).unwrap();
    /// assert_eq!(plan.max_window_run(1), plan.max_window());
    /// let (w4, h4) = plan.max_window_run(4);
    /// assert!(w4 > plan.max_window().0 && w4 <= 100 && h4 == plan.max_window().1);
    /// ```
    pub fn max_window_run(&self, k: u32) -> (u32, u32) {
        let across = self.tiles_across();
        let w = (0..across)
            .map(|t| {
                let last = (t + k.max(1)).min(across) - 1;
                let a = self.span(t, self.geom.out_size.0).start;
                let b = self.span(last, self.geom.out_size.0).end;
                self.x.input_span(a..b).len()
            })
            .max()
            .unwrap_or(0);
        (w as u32, self.max_window().1)
    }

    /// Bytes of one full output tile buffer.
    pub fn tile_bytes(&self) -> usize {
        self.geom.tile_bytes() as usize
    }
}
