//! Elementwise functions of a network (SPAN's sigmoid gates and SiLU activations): the value
//! the float reference computes, and the table the exact engine looks each value up in — one
//! entry per 16-bit input, computed once in f64, so that every backend reads the same bytes.

/// `v[c]`, or `v[0]` for a slice of one value (every channel's).
pub(crate) fn at<V: Copy>(v: &[V], c: usize) -> V {
    v[if v.len() == 1 { 0 } else { c }]
}

/// A function of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// `1 / (1 + e^-x)` (ncnn's `Sigmoid`).
    Sigmoid,
    /// `x / (1 + e^-x)` (ncnn's `Swish`, also called SiLU).
    Swish,
}

/// `f(x) · mul + add` on every value (a scalar affine layer after the function is folded in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Map {
    pub f: Func,
    pub mul: f32,
    pub add: f32,
}

/// Entries of a lookup table: one per 16-bit value, `q + TABLE_OFFSET` indexes `q`.
pub(crate) const TABLE_LEN: usize = 1 << 16;
/// Where the table's entry for the value 0 is.
pub(crate) const TABLE_OFFSET: i32 = 1 << 15;

impl Map {
    /// The float reference's value, in f32 as ncnn computes it.
    pub(crate) fn eval(&self, x: f32) -> f32 {
        let f = match self.f {
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Swish => x / (1.0 + (-x).exp()),
        };
        f * self.mul + self.add
    }

    /// The exact engine's table for input exponent `e_in` and output exponent `e_out`: entry
    /// `q + TABLE_OFFSET` is `map(q / 2^e_in) · 2^e_out` rounded half up, saturated to ±32767.
    pub(crate) fn table(&self, e_in: i32, e_out: i32) -> Vec<i16> {
        let (unit_in, unit_out) = (2f64.powi(-e_in), 2f64.powi(e_out));
        (0..TABLE_LEN as i32)
            .map(|i| {
                let x = (i - TABLE_OFFSET) as f64 * unit_in;
                let f = match self.f {
                    Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                    Func::Swish => x / (1.0 + (-x).exp()),
                };
                let v = ((f * self.mul as f64 + self.add as f64) * unit_out + 0.5).floor();
                v.clamp(-32767.0, 32767.0) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_the_rounded_function() {
        let s = Map { f: Func::Sigmoid, mul: 1.0, add: -0.5 };
        let t = s.table(12, 14);
        assert_eq!(t.len(), TABLE_LEN);
        // sigmoid(0) - 0.5 = 0; sigmoid(1) - 0.5 = 0.2310586; large inputs saturate to 0.5.
        assert_eq!(t[TABLE_OFFSET as usize], 0);
        assert_eq!(t[(TABLE_OFFSET + 4096) as usize], (0.231_058_6f64 * 16384.0 + 0.5).floor() as i16);
        // At ±8 (the ends of this table) not yet saturated; at ±128 (input exponent 8) it is.
        assert_eq!((t[0], t[TABLE_LEN - 1]), (-8187, 8187));
        let wide = s.table(8, 14);
        assert_eq!((wide[0], wide[TABLE_LEN - 1]), (-8192, 8192));
        let w = Map { f: Func::Swish, mul: 1.0, add: 0.0 };
        let t = w.table(10, 10);
        // swish(x) ~ x for large x, ~ 0 for very negative x, -0.2785 at its minimum (x = -1.278).
        assert_eq!(t[(TABLE_OFFSET + 20000) as usize], 20000);
        assert_eq!(t[(TABLE_OFFSET - 30000) as usize], 0);
        let least = *t.iter().min().unwrap();
        assert_eq!(least, (-0.278_464_5f64 * 1024.0 + 0.5).floor() as i16);
        for q in [-5000i32, -1, 0, 1, 777, 9000] {
            let want = (w.eval(q as f32 / 1024.0) as f64 * 1024.0 + 0.5).floor() as i16;
            assert!((t[(q + TABLE_OFFSET) as usize] - want).abs() <= 1, "swish table at {q}");
        }
    }
}
