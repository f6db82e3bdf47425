//! The exact engine with its convolutions computed elsewhere (the GPU): a [`ConvDevice`] gets
//! each convolution's packed weights and per-channel rounding words ([`DeviceConv`]) and an
//! input window, and must return what `kernels::conv` returns, bit for bit. Everything else
//! (activations outside convolutions, pixel shuffle, enlargement, sums, the interleaving of a
//! deconvolution's phases) stays on the CPU, in the same code as the CPU engine's.

use super::exact::{conv_window, DeviceConv, Exact};
use super::graph::{Act, Conv};
use super::phases;
use super::reference::{Engine, Tensor};

/// Something that computes a stride-1 convolution of the exact engine.
pub(crate) trait ConvDevice: Sync {
    /// Node `node`'s convolution `dc` of `x`, over the output window `window` (per axis:
    /// start, length, global length): `dc.conv.cout` channels, channel-major.
    fn conv(&self, node: usize, dc: &DeviceConv, x: &Tensor<i16>, window: [(usize, usize, usize); 2])
        -> Result<Tensor<i16>, String>;
}

/// The exact engine, its convolutions on `device`.
pub(crate) struct Offloaded<'a, D: ?Sized> {
    pub exact: &'a Exact,
    pub device: &'a D,
}

impl<D: ConvDevice + ?Sized> Engine<i16> for Offloaded<'_, D> {
    fn conv(&self, n: usize, c: &Conv, x: &Tensor<i16>) -> Result<Tensor<i16>, String> {
        let Some(dc) = self.exact.device_conv(n, c) else { return self.exact.conv(n, c, x) };
        if dc.phases > 1 {
            let t = self.device.conv(n, &dc, x, phases::window(&dc.conv, x))?;
            Ok(phases::interleave(c, &t))
        } else {
            self.device.conv(n, &dc, x, conv_window(&dc.conv, x))
        }
    }
    fn act(&self, n: usize, a: &Act, x: Tensor<i16>) -> Tensor<i16> {
        self.exact.act(n, a, x)
    }
    fn sum(&self, n: usize, coeffs: &[f32], xs: &[Tensor<i16>], ins: &[usize], out: usize) -> Tensor<i16> {
        self.exact.sum(n, coeffs, xs, ins, out)
    }
    fn affine(&self, n: usize, mul: f32, add: f32, x: Tensor<i16>, inp: usize, out: usize) -> Tensor<i16> {
        self.exact.affine(n, mul, add, x, inp, out)
    }
    fn concat(&self, xs: &[Tensor<i16>], ins: &[usize], out: usize) -> Tensor<i16> {
        self.exact.concat(xs, ins, out)
    }
}

/// The same convolution on the CPU, through the device interface: what every device must
/// reproduce (and a check of the interface itself).
#[cfg(test)]
pub(crate) struct CpuDevice;

#[cfg(test)]
impl ConvDevice for CpuDevice {
    fn conv(&self, _n: usize, dc: &DeviceConv, x: &Tensor<i16>, window: [(usize, usize, usize); 2])
        -> Result<Tensor<i16>, String> {
        let c = &dc.conv;
        let per = c.kernel * c.kernel * c.cin.div_ceil(2);
        let (pairs, params) = dc.words.split_at(c.cout * per);
        let packed = super::kernels::Packed::from_pairs(pairs.to_vec(), per, c.cout);
        Ok(super::kernels::conv(super::kernels::Kernel::Native, c, &packed, x, window, |o, row| {
            let q = &params[o * 4..o * 4 + 4];
            for v in row.iter_mut() {
                let r = super::exact::shift_round(v.wrapping_add(q[0]), q[1]).clamp(-32767, 32767);
                *v = super::exact::activate(r, (q[3] != 0).then_some(q[2]));
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::reference::run_with;

    #[test]
    fn the_device_interface_reproduces_the_cpu_engine() {
        for name in ["photo", "anime"] {
            let m = crate::Model::builtin(name).unwrap();
            let e = m.exact().unwrap();
            let mut t = Tensor::<i16>::zeros(3, 12, 14);
            t.data.iter_mut().enumerate().for_each(|(i, v)| *v = ((i * 7919) % 16385) as i16);
            let want = run_with(&m.graph, e.as_ref(), t.clone(), &mut |_, _| {}).unwrap();
            let got = run_with(&m.graph, &Offloaded { exact: &e, device: &CpuDevice }, t, &mut |_, _| {}).unwrap();
            assert!(got == want, "{name}");
        }
    }
}
