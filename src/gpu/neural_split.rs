//! The split input the tensor-core convolutions (`neural_tensor.rs`) read: a blob's samples,
//! for each row and column a convolution's reach covers and each 16-channel slice, as half
//! floats a 16x16 matrix load takes straight from the buffer — the high and low halves of
//! 16-bit values (or of the upper parts of 24-bit ones), or the lower parts of 24-bit values
//! whole — and where a convolution's reach lies in a split ([`PartPlace`]), so that a split
//! made for one convolution serves the next that reads the same blob (`neural_conv.rs`).

use super::neural_tensor::{split_rounding, RUN, SPLIT_BITS};
use std::fmt::Write;

/// [`split_geometry`](super::neural_tensor::split_geometry) in WGSL, from the convolution's
/// parameters `p`: `wp` columns per row and `rows` rows of the split input of a `k x k` kernel.
fn split_geometry_wgsl(k: usize) -> String {
    format!("    let wp = (p.out_w + {}) / {RUN} * {RUN} + {};\n    let rows = p.out_h + {};\n", RUN - 1, k - 1, k - 1)
}

/// What a split holds (`split_shader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SplitForm {
    /// The high and low halves of 16-bit values, or of the upper or lower parts of 24-bit
    /// ones (`p.part`).
    Halves,
    /// The lower parts of 24-bit values whole, one half each (`p.part` 2).
    Whole,
    /// Both parts of 24-bit values in one pass: the upper parts' halves (binding 2) and the
    /// lower parts whole (binding 3, as [`SplitForm::Whole`] writes them); `p.part` unread.
    Both,
}

/// Rows of a split an invocation writes (`split_shader`). Every invocation issues its loads
/// before it stores a value; more rows an invocation keep more loads in flight, yet were slower
/// on an H100 (realesrgan-x4plus's 709 splits: 0.120 s at one row, 0.124 s at two, 0.126 s at
/// four; 0.140 s with each load under its own branch; docs/benchmarks.md 2026-12-06 (16)).
/// `GIGASCALE_GPU_SPLIT_ROWS` (1, 2 or 4; a benchmark's knob, read once) sets another; the
/// bytes never change.
pub(crate) fn split_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        let asked = std::env::var("GIGASCALE_GPU_SPLIT_ROWS").ok().and_then(|v| v.parse().ok());
        asked.filter(|r| [1, 2, 4].contains(r)).unwrap_or(SPLIT_ROWS)
    })
}

/// [`split_rows`]' default.
const SPLIT_ROWS: usize = 1;

/// The grid of [`split_shader`] over a split of `columns` columns, `rows` rows and `slices`
/// 16-channel slices: a 64-invocation workgroup per 16 columns of [`split_rows`] rows of a slice.
pub(crate) fn split_groups(columns: usize, rows: usize, slices: usize) -> (u32, u32, u32) {
    split_groups_of(columns, rows, slices, split_rows())
}

/// [`split_groups`] for `per` rows an invocation.
pub(crate) fn split_groups_of(columns: usize, rows: usize, slices: usize, per: usize) -> (u32, u32, u32) {
    ((4 * columns).div_ceil(64) as u32, rows.div_ceil(per) as u32, slices as u32)
}

/// The shader that splits a blob into the halves the tensor-core shader reads as matrices:
/// for each row and column of a convolution's reach and each 16-channel slice, `256·h + l` of
/// the 16 samples shifted right by `p.shift` bits (rounded; left where negative, saturated), as
/// `concat` (`shaders/neural_ops.wgsl`) shifts a part to its concatenation's exponent — or the
/// upper or lower part of 24-bit samples so shifted (`p.part`: `split_value`) — (zero
/// outside the image, outside the blob's window and past the last channel), as half floats. One
/// invocation per four channels of a slice at one column and [`split_rows`] rows (the grid:
/// [`split_groups`]); the convolution's parameters, with the blob's window as the input's.
///
/// [`SplitForm::Whole`] splits the lower parts of 24-bit values (in `[-128, 128)`, exact as
/// half floats): the values themselves, one half each, no low halves — the convolution reading
/// it is [`tensor_conv_shader`]'s `lower` form. [`SplitForm::Both`] writes the upper parts'
/// halves and the lower parts whole, reading the blob once.
///
/// [`tensor_conv_shader`]: super::neural_tensor::tensor_conv_shader
pub(crate) fn split_shader(cin: usize, k: usize, form: SplitForm) -> String {
    split_shader_of(cin, k, form, split_rows())
}

/// [`split_shader`] with `rows` rows an invocation (its grid: [`split_groups_of`]).
pub(crate) fn split_shader_of(cin: usize, k: usize, form: SplitForm, rows: usize) -> String {
    let slices = cin.div_ceil(16);
    let mut s = String::with_capacity(8 << 10);
    s.push_str("enable f16;\n");
    s.push_str(super::neural_shader::COMMON);
    s.push_str(super::neural_shader::CONV_PARAMS);
    s.push_str(super::neural_shader::CONV_INPUT);
    s.push_str("@group(0) @binding(2) var<storage, read_write> xs: array<vec4<f16>>;\n");
    if form == SplitForm::Both {
        s.push_str("@group(0) @binding(3) var<storage, read_write> xw: array<vec4<f16>>;\n");
    }
    s.push_str("@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n");
    s.push_str(&split_geometry_wgsl(k));
    // Invocation `4·col + q` splits channels `4q..4q + 4` of the slice at column `col`: a
    // subgroup's writes are contiguous.
    s.push_str("    let col = i32(gid.x / 4u);\n    let q = i32(gid.x % 4u);\n    let sl = i32(gid.z);\n");
    s.push_str("    if col >= wp { return; }\n    let gx = p.out_x0 - p.pad_x + col;\n");
    s.push_str("    let across = gx >= max(p.in_x0, 0) && gx < min(p.in_x0 + p.in_w, p.gw);\n");
    s.push_str("    let plane = p.in_w * p.in_h;\n");
    // Every row's loads first (an index outside the blob's window or past its channels reads
    // value 0 and is not kept), then each row's values.
    for r in 0..rows {
        let _ = writeln!(s, "    let r{r} = i32(gid.y) * {rows} + {r};\n    let gy{r} = p.out_y0 - p.pad_y + r{r};");
        let _ =
            writeln!(s, "    let in{r} = across && gy{r} >= max(p.in_y0, 0) && gy{r} < min(p.in_y0 + p.in_h, p.gh);");
        let _ = writeln!(s, "    let at{r} = (gy{r} - p.in_y0) * p.in_w + gx - p.in_x0;");
        for c in 0..4 {
            let _ = writeln!(s, "    let ok{r}_{c} = in{r} && sl * 16 + q * 4 + {c} < {cin};");
            let at = format!("(sl * 16 + q * 4 + {c}) * plane + at{r}");
            let _ = writeln!(s, "    let x{r}_{c} = x[select(0, {at}, ok{r}_{c})];");
        }
    }
    if form != SplitForm::Whole {
        // Where the low halves start.
        let _ = writeln!(s, "    let low = rows * {slices} * wp * 4;");
    }
    for r in 0..rows {
        let _ = writeln!(s, "    if r{r} < rows {{");
        split_row(&mut s, r, (slices, form));
        s.push_str("    }\n");
    }
    s.push_str("}\n");
    s
}

/// The values of row `r{r}` of [`split_shader`] (its loads `x{r}_{c}` made), written.
fn split_row(s: &mut String, r: usize, (slices, form): (usize, SplitForm)) {
    let (half, mask) = split_rounding();
    let (both, lower) = (form == SplitForm::Both, form == SplitForm::Whole);
    for c in 0..4 {
        let x = format!("x{r}_{c}");
        if both {
            // The value shifted once, both its parts taken from it.
            let _ = writeln!(s, "        let u{c} = shift_wide({x}, p.shift);");
            let _ = writeln!(s, "        let v{c} = select(0, wide_part(u{c}, true), ok{r}_{c});");
            let _ = writeln!(s, "        let w{c} = select(0, wide_part(u{c}, false), ok{r}_{c});");
        } else {
            let _ = writeln!(s, "        let v{c} = select(0, split_value({x}, p.shift, p.part), ok{r}_{c});");
        }
        if !lower {
            let _ = writeln!(s, "        let l{c} = ((v{c} + {half}) & {mask}) - {half};");
            let _ = writeln!(s, "        let h{c} = (v{c} - l{c}) >> {SPLIT_BITS}u;");
        }
    }
    let _ = writeln!(s, "        let o = ((r{r} * {slices} + sl) * wp + col) * 4 + q;");
    if lower {
        s.push_str("        xs[o] = vec4<f16>(f16(v0), f16(v1), f16(v2), f16(v3));\n");
        return;
    }
    if both {
        s.push_str("        xw[o] = vec4<f16>(f16(w0), f16(w1), f16(w2), f16(w3));\n");
    }
    s.push_str("        xs[o] = vec4<f16>(f16(h0), f16(h1), f16(h2), f16(h3));\n");
    s.push_str("        xs[low + o] = vec4<f16>(f16(l0), f16(l1), f16(l2), f16(l3));\n");
}

/// Where a part's split input lies for a convolution reading it, in units of 16 halves (one
/// column of one slice) unless said: the convolution's first row and column, the columns of a
/// slice's row, the low halves' offset in halves, and a row of every slice. The
/// tensor-core shader reads tap `(ky, kx)` of slice `sl` at output row `oy`, column `px` from
/// `base + (oy + ky)·row + sl·columns + px + kx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartPlace {
    pub base: i32,
    pub columns: i32,
    pub low: i32,
    pub row: i32,
}

impl PartPlace {
    /// The place of a convolution's reach starting at column `dx`, row `dy` of a split of
    /// `slices` slices, `columns` columns and `rows` rows.
    pub(crate) fn within(slices: usize, (columns, rows): (usize, usize), (dx, dy): (usize, usize)) -> PartPlace {
        let row = slices * columns;
        PartPlace {
            base: (dy * row + dx) as i32,
            columns: columns as i32,
            low: (rows * row * 16) as i32,
            row: row as i32,
        }
    }

    /// The four words binding 5 holds for this part.
    pub(crate) fn words(&self) -> [i32; 4] {
        [self.base, self.columns, self.low, self.row]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reach's place: its first column and row counted in 16-half columns of every slice,
    /// the low halves after all the high ones, and the split shader writes the halves of
    /// column `col`, row `r`, slice `sl` where the convolution then reads them.
    #[test]
    fn places_count_columns_of_every_slice() {
        let (slices, columns, rows) = (3, 130, 8);
        let place = PartPlace::within(slices, (columns, rows), (2, 1));
        assert_eq!(place.words(), [3 * 130 + 2, 130, 8 * 3 * 130 * 16, 3 * 130]);
        // The shader's index of (row 4, slice 2, column 7) in 16-half units, and the
        // convolution's for the same sample from this place (tap (3, 5) of output (0, 0)).
        let (r, sl, col) = (4, 2, 7);
        let written = (r * slices + sl) * columns + col;
        let read = place.base as usize + 3 * place.row as usize + sl * place.columns as usize + 5;
        assert_eq!(written, 14 * 130 + 7);
        assert_eq!(read, written);
    }
}
