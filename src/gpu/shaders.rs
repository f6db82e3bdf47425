//! The WGSL sources, embedded at compile time. Each module is assembled from
//! `shaders/common.wgsl` (parameters, rounding helpers), the shared parts of its pass
//! (`source.wgsl` and `horizontal.wgsl` for the passes reading the window; `finish.wgsl` and
//! `pack.wgsl` for the passes writing the tile) and the pass itself.

/// Pass 1, horizontal.
pub(crate) const HPASS: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/source.wgsl"),
    include_str!("../../shaders/horizontal.wgsl"),
    include_str!("../../shaders/hpass.wgsl")
);
/// Pass 2, vertical.
pub(crate) const VPASS: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/vpass.wgsl"),
    include_str!("../../shaders/finish.wgsl"),
    include_str!("../../shaders/pack.wgsl")
);

/// Pass 1 of the rounded intermediate, vertical.
pub(crate) const VFIRST: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/source.wgsl"),
    include_str!("../../shaders/vertical_first.wgsl")
);
/// Pass 2 of the rounded intermediate, horizontal.
pub(crate) const HLAST: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/horizontal_last.wgsl"),
    include_str!("../../shaders/finish.wgsl"),
    include_str!("../../shaders/pack.wgsl")
);

/// Pass 1 with an f16 intermediate (`--precision f16`).
pub(crate) const HPASS_F16: &str = concat!(
    "enable f16;\n",
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/source.wgsl"),
    include_str!("../../shaders/horizontal.wgsl"),
    include_str!("../../shaders/hpass_f16.wgsl")
);
/// Pass 2 with an f16 intermediate.
pub(crate) const VPASS_F16: &str = concat!(
    "enable f16;\n",
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/vpass_f16.wgsl"),
    include_str!("../../shaders/pack.wgsl")
);

/// Every shader module with its name, for validation.
#[cfg(test)]
pub(crate) const ALL: [(&str, &str); 6] = [
    ("hpass", HPASS),
    ("vpass", VPASS),
    ("vfirst", VFIRST),
    ("hlast", HLAST),
    ("hpass_f16", HPASS_F16),
    ("vpass_f16", VPASS_F16),
];

/// Uniform parameters of one tile, laid out as `Params` in `shaders/common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) out_x: u32,
    pub(crate) out_y: u32,
    pub(crate) out_w: u32,
    pub(crate) out_h: u32,
    pub(crate) src_x: u32,
    pub(crate) src_y: u32,
    pub(crate) src_w: u32,
    pub(crate) src_h: u32,
    pub(crate) tile: u32,
    pub(crate) ch: u32,
    pub(crate) bps: u32,
    pub(crate) alpha: u32,
    pub(crate) sh1_colour: u32,
    pub(crate) sh1_plain: u32,
    pub(crate) k2_plain: u32,
    pub(crate) max_value: u32,
    pub(crate) n_shift: u32,
    pub(crate) d_shift: u32,
    pub(crate) taps_x: u32,
    pub(crate) taps_y: u32,
    pub(crate) n_x: u32,
    pub(crate) n_y: u32,
    pub(crate) groups_x: u32,
    pub(crate) pad0: u32,
    pub(crate) t_plain: u32,
    pub(crate) t_colour: u32,
    pub(crate) out_stride: u32,
    pub(crate) pad2: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every WGSL module parses and validates with naga, with the one capability we request.
    #[test]
    fn shaders_validate_with_naga() {
        for (name, src) in ALL {
            let module =
                naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            let caps = naga::valid::Capabilities::SHADER_INT64 | naga::valid::Capabilities::SHADER_FLOAT16;
            let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
            v.validate(&module).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            // And it needs those capabilities: without them validation must fail.
            let mut strict =
                naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
            assert!(strict.validate(&module).is_err(), "{name} validated without SHADER_INT64");
        }
    }

    #[test]
    fn params_match_the_wgsl_struct() {
        // 28 u32 fields, as declared in shaders/common.wgsl (a multiple of 16 bytes).
        assert_eq!(std::mem::size_of::<Params>(), 28 * 4);
        assert!(HPASS.contains("struct Params") && VPASS.contains("struct Params"));
        let fields = include_str!("../../shaders/common.wgsl")
            .split("struct Params {")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap()
            .matches(": u32")
            .count();
        assert_eq!(fields, 28);
    }
}
