//! The five resampling filters: their support and their continuous weight function.

use std::f64::consts::PI;

/// A resampling filter.
///
/// ```
/// use gigascale::Filter;
/// assert_eq!(Filter::Lanczos3.support(), 3.0);
/// assert!((Filter::Bicubic.weight(0.0) - 1.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filter {
    /// Point sampling: the single nearest source pixel, also when downscaling.
    Nearest,
    /// Triangle (tent) filter, support 1.
    Bilinear,
    /// Keys cubic with a = -0.5 (Catmull-Rom), support 2.
    Bicubic,
    /// Mitchell-Netravali with B = C = 1/3, support 2.
    Mitchell,
    /// Lanczos windowed sinc with three lobes, support 3.
    Lanczos3,
}

impl Filter {
    /// All filters, in CLI order.
    pub const ALL: [Filter; 5] =
        [Filter::Nearest, Filter::Bilinear, Filter::Bicubic, Filter::Mitchell, Filter::Lanczos3];

    /// Half-width of the kernel in source pixels at scale 1.
    pub fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.5,
            Filter::Bilinear => 1.0,
            Filter::Bicubic | Filter::Mitchell => 2.0,
            Filter::Lanczos3 => 3.0,
        }
    }

    /// The kernel value at distance `x` (in source pixels at scale 1).
    pub fn weight(self, x: f64) -> f64 {
        let ax = x.abs();
        match self {
            Filter::Nearest => {
                if ax < 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => (1.0 - ax).max(0.0),
            Filter::Bicubic => cubic_bc(ax, 0.0, 0.5),
            Filter::Mitchell => cubic_bc(ax, 1.0 / 3.0, 1.0 / 3.0),
            Filter::Lanczos3 => {
                if ax >= 3.0 {
                    0.0
                } else {
                    sinc(ax) * sinc(ax / 3.0)
                }
            }
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Nearest => "nearest",
            Filter::Bilinear => "bilinear",
            Filter::Bicubic => "bicubic",
            Filter::Mitchell => "mitchell",
            Filter::Lanczos3 => "lanczos3",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(s: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.name() == s)
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = PI * x;
        px.sin() / px
    }
}

/// The Mitchell-Netravali family; (B, C) = (0, 0.5) is Keys with a = -0.5.
fn cubic_bc(x: f64, b: f64, c: f64) -> f64 {
    let v = if x < 1.0 {
        (12.0 - 9.0 * b - 6.0 * c) * x * x * x + (-18.0 + 12.0 * b + 6.0 * c) * x * x + (6.0 - 2.0 * b)
    } else if x < 2.0 {
        (-b - 6.0 * c) * x * x * x + (6.0 * b + 30.0 * c) * x * x + (-12.0 * b - 48.0 * c) * x + (8.0 * b + 24.0 * c)
    } else {
        0.0
    };
    v / 6.0
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn interpolating_filters_pass_through_integers() {
        for f in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos3] {
            assert!((f.weight(0.0) - 1.0).abs() < 1e-12, "{f:?}");
            for k in 1..4 {
                assert!(f.weight(k as f64).abs() < 1e-12, "{f:?} at {k}");
            }
        }
        // Mitchell is not interpolating: w(0) = 8/9, w(1) = 1/18.
        assert!((Filter::Mitchell.weight(0.0) - 8.0 / 9.0).abs() < 1e-12);
        assert!((Filter::Mitchell.weight(1.0) - 1.0 / 18.0).abs() < 1e-12);
        // Keys a=-0.5 at 0.5: 0.5625
        assert!((Filter::Bicubic.weight(0.5) - 0.5625).abs() < 1e-12);
    }
}
