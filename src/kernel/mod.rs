//! Kernels: the filter functions, the coefficient tables built from them, and the fixed-point
//! arithmetic contract that every backend implements.

mod coeffs;
mod filter;
pub(crate) mod fixed;

pub use coeffs::{span_bound, table_bytes, taps_bound, AxisCoeffs};
pub use filter::Filter;
pub use fixed::Intermediate;
