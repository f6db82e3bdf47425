//! A window of a blob: what every evaluation of a network (float, exact, on a device) passes
//! from layer to layer.

/// A window `[x0, x0 + w) x [y0, y0 + h)` of a blob whose global size is `gw x gh`, `c`
/// channels, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor<T = f32> {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub x0: usize,
    pub y0: usize,
    pub gw: usize,
    pub gh: usize,
    pub data: Vec<T>,
}

impl<T: Copy + Default> Tensor<T> {
    /// A whole blob of zeros.
    pub(crate) fn zeros(c: usize, h: usize, w: usize) -> Tensor<T> {
        Tensor::window(c, (0, w, w), (0, h, h))
    }
    /// A window of zeros: per axis `(start, length, global length)`.
    pub(crate) fn window(
        c: usize,
        (x0, w, gw): (usize, usize, usize),
        (y0, h, gh): (usize, usize, usize),
    ) -> Tensor<T> {
        Tensor { c, h, w, x0, y0, gw, gh, data: vec![T::default(); c * h * w] }
    }
    pub(crate) fn plane(&self, c: usize) -> &[T] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

impl<T> Tensor<T> {
    /// A tensor of this one's window with no data (of any element type).
    pub(crate) fn shaped<U>(&self) -> Tensor<U> {
        let (c, h, w, x0, y0, gw, gh) = (self.c, self.h, self.w, self.x0, self.y0, self.gw, self.gh);
        Tensor { c, h, w, x0, y0, gw, gh, data: Vec::new() }
    }
}
