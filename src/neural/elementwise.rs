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

    /// The exact engine's table for input exponent `e_in` and output exponent `e_out`, with
    /// `low` more bits below the output's 16-bit scale (0, or 8 for 24-bit activations): entry
    /// `q + TABLE_OFFSET` is `map(q / 2^e_in) · 2^(e_out + low)` rounded half up, saturated to
    /// ±(32767·2^low + 2^low/2 - 1) (±32767 at 16 bits).
    pub(crate) fn table(&self, e_in: i32, e_out: i32, low: i32) -> Vec<i32> {
        let (unit_in, unit_out) = (2f64.powi(-e_in), 2f64.powi(e_out + low));
        let sat = (32767i64 << low) + (1i64 << low) / 2 - i64::from(low > 0);
        (0..TABLE_LEN as i32)
            .map(|i| {
                let x = (i - TABLE_OFFSET) as f64 * unit_in;
                let f = match self.f {
                    Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                    Func::Swish => x / (1.0 + (-x).exp()),
                };
                let v = ((f * self.mul as f64 + self.add as f64) * unit_out + 0.5).floor();
                v.clamp(-sat as f64, sat as f64) as i32
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
        let t = s.table(12, 14, 0);
        assert_eq!(t.len(), TABLE_LEN);
        // sigmoid(0) - 0.5 = 0; sigmoid(1) - 0.5 = 0.2310586; large inputs saturate to 0.5.
        assert_eq!(t[TABLE_OFFSET as usize], 0);
        assert_eq!(t[(TABLE_OFFSET + 4096) as usize], (0.231_058_6f64 * 16384.0 + 0.5).floor() as i32);
        // At ±8 (the ends of this table) not yet saturated; at ±128 (input exponent 8) it is.
        assert_eq!((t[0], t[TABLE_LEN - 1]), (-8187, 8187));
        let wide = s.table(8, 14, 0);
        assert_eq!((wide[0], wide[TABLE_LEN - 1]), (-8192, 8192));
        let w = Map { f: Func::Swish, mul: 1.0, add: 0.0 };
        let t = w.table(10, 10, 0);
        // swish(x) ~ x for large x, ~ 0 for very negative x, -0.2785 at its minimum (x = -1.278).
        assert_eq!(t[(TABLE_OFFSET + 20000) as usize], 20000);
        assert_eq!(t[(TABLE_OFFSET - 30000) as usize], 0);
        let least = *t.iter().min().unwrap();
        assert_eq!(least, (-0.278_464_5f64 * 1024.0 + 0.5).floor() as i32);
        for q in [-5000i32, -1, 0, 1, 777, 9000] {
            let want = (w.eval(q as f32 / 1024.0) as f64 * 1024.0 + 0.5).floor() as i32;
            assert!((t[(q + TABLE_OFFSET) as usize] - want).abs() <= 1, "swish table at {q}");
        }
        // With 8 more bits below: 256 times the entries, to within rounding; the same ends.
        let t24 = w.table(10, 10, 8);
        assert_eq!(t24[(TABLE_OFFSET + 20000) as usize], 20000 << 8);
        assert!((t24[(TABLE_OFFSET + 777) as usize] - (t[(TABLE_OFFSET + 777) as usize] << 8)).abs() <= 128);
        assert_eq!(s.table(12, 30, 8)[TABLE_LEN - 1], 32767 * 256 + 127);
    }
}
