//! Small ncnn models (`.param` text and `.bin` weights drawn from a seed) in the forms of the
//! real networks the neural tests stand in for: wide hidden blobs, dense connections, residual
//! sums, an enlarging tail, a U-Net. Cheap to run anywhere (lavapipe too).

use gigascale::digest::Lcg;

/// A small x2 ncnn model (`.param` text and `.bin`) whose hidden blob is `wide` channels:
/// 3x3 convolution 3 -> wide with ReLU, 3x3 convolution wide -> 12, pixel shuffle x2; f32
/// weights (tag 0) drawn from `seed`. Cheap to run anywhere (lavapipe too), with a blob as
/// large as a test wants.
pub fn wide_model(wide: usize, seed: u64) -> (String, Vec<u8>) {
    let (w1, w2) = (27 * wide, wide * 9 * 12);
    let param = format!(
        "7767517\n4 4\nInput data 0 1 data 2=3\n\
         Convolution conv1 1 1 data a 0={wide} 1=3 4=1 5=1 6={w1} 9=1\n\
         Convolution conv2 1 1 a b 0=12 1=3 4=1 5=1 6={w2}\n\
         PixelShuffle ps 1 1 b out 0=2\n"
    );
    let mut rng = Lcg(seed);
    let mut value = |scale: f32| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
    let mut bin = Vec::new();
    for (n, bias, scale) in [(w1, wide, 0.5), (w2, 12, 4.0 / (wide as f32 * 9.0))] {
        bin.extend(0u32.to_le_bytes());
        (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
        (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
    }
    (param, bin)
}

/// A small x2 ncnn model with a dense connection, as RRDB blocks have (realesrgan-x4plus):
/// conv 3 -> 8 (ReLU), its output split into conv 8 -> 8 (ReLU) and a concatenation of both
/// (16 channels), conv 16 -> 12, pixel shuffle x2; f32 weights from `seed`.
pub fn dense_model(seed: u64) -> (String, Vec<u8>) {
    let param = "7767517\n7 8\nInput data 0 1 data 2=3\n\
                 Convolution c1 1 1 data a 0=8 1=3 4=1 5=1 6=216 9=1\n\
                 Split sp 1 2 a a1 a2\n\
                 Convolution c2 1 1 a1 b 0=8 1=3 4=1 5=1 6=576 9=1\n\
                 Concat cat 2 1 a2 b c\n\
                 Convolution c3 1 1 c d 0=12 1=3 4=1 5=1 6=1728\n\
                 PixelShuffle ps 1 1 d out 0=2\n";
    let mut rng = Lcg(seed);
    let mut value = |scale: f32| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
    let mut bin = Vec::new();
    for (n, bias, scale) in [(216, 8, 0.5), (576, 8, 0.3), (1728, 12, 0.3)] {
        bin.extend(0u32.to_le_bytes());
        (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
        (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
    }
    (param.to_string(), bin)
}

/// A small x2 ncnn model with residual sums as realesrgan-x4plus's close its dense blocks and
/// RRDB blocks: a convolution's output summed (0.2 of it) with an earlier blob; a leaky
/// convolution's output summed (0.5 of it) after a blob two convolutions earlier, whose window
/// is wider within a tile, and that sum's output (0.2 of it) with the same blob; then conv
/// 8 -> 12 and a pixel shuffle. f32 weights from `seed`.
pub fn residual_model(seed: u64) -> (String, Vec<u8>) {
    let param = "7767517\n10 13\nInput data 0 1 data 2=3\n\
                 Convolution c1 1 1 data a 0=8 1=3 4=1 5=1 6=216 9=1\n\
                 Split sp 1 4 a a1 a2 a3 a4\n\
                 Convolution c2 1 1 a1 b 0=8 1=3 4=1 5=1 6=576\n\
                 Eltwise s1 2 1 b a2 c 0=1 -23301=2,2.000000e-01,1.000000e+00\n\
                 Convolution c3 1 1 c d 0=8 1=3 4=1 5=1 6=576 9=2 -23310=1,2.000000e-01\n\
                 Eltwise s2 2 1 a3 d e 0=1 -23301=2,1.000000e+00,5.000000e-01\n\
                 Eltwise s3 2 1 e a4 h 0=1 -23301=2,2.000000e-01,1.000000e+00\n\
                 Convolution c4 1 1 h f 0=12 1=3 4=1 5=1 6=864\n\
                 PixelShuffle ps 1 1 f out 0=2\n";
    let mut rng = Lcg(seed);
    let mut value = |scale: f32| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
    let mut bin = Vec::new();
    for (n, bias, scale) in [(216, 8, 0.5), (576, 8, 0.3), (576, 8, 0.3), (864, 12, 0.3)] {
        bin.extend(0u32.to_le_bytes());
        (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
        (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
    }
    (param.to_string(), bin)
}

/// A small x4 ncnn model in realesrgan-x4plus's form: a trunk at the input's scale (conv 3 -> 8
/// leaky, conv 8 -> 8), then two nearest 2x enlargements each followed by a leaky conv 8 -> 8,
/// and conv 8 -> 3; f32 weights from `seed`. Its tail is 16 times the trunk's blobs.
pub fn x4_tail_model(seed: u64) -> (String, Vec<u8>) {
    let leaky = "9=2 -23310=1,2.000000e-01";
    let param = format!(
        "7767517\n8 8\nInput data 0 1 data 2=3\n\
         Convolution c1 1 1 data a 0=8 1=3 4=1 5=1 6=216 {leaky}\n\
         Convolution c2 1 1 a b 0=8 1=3 4=1 5=1 6=576\n\
         Interp up1 1 1 b c 0=1 1=2.0 2=2.0\n\
         Convolution c3 1 1 c d 0=8 1=3 4=1 5=1 6=576 {leaky}\n\
         Interp up2 1 1 d e 0=1 1=2.0 2=2.0\n\
         Convolution c4 1 1 e f 0=8 1=3 4=1 5=1 6=576 {leaky}\n\
         Convolution c5 1 1 f out 0=3 1=3 4=1 5=1 6=216\n"
    );
    let mut rng = Lcg(seed);
    let mut value = |scale: f32| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
    let mut bin = Vec::new();
    for (n, bias, scale) in [(216, 8, 0.5), (576, 8, 0.3), (576, 8, 0.3), (576, 8, 0.3), (216, 3, 0.3)] {
        bin.extend(0u32.to_le_bytes());
        (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
        (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
    }
    (param, bin)
}

/// An x2 U-Net in Real-CUGAN's form: valid 3x3 convolution, a strided 2x2 convolution down, a
/// SE block, a 2x2 deconvolution up added to a crop of the skip connection, and a 4x4
/// deconvolution of stride 2 (cropped by 3) to the output. f32 weights from `seed`.
pub fn unet_model(seed: u64) -> (String, Vec<u8>) {
    let param = "7767517\n14 17\nInput in0 0 1 in0\n\
        Convolution c0 1 1 in0 a 0=8 1=3 5=1 6=216 9=2 -23310=1,1.000000e-01\n\
        Split s0 1 2 a a1 a2\n\
        Convolution down 1 1 a2 b 0=8 1=2 3=2 5=1 6=256 9=2 -23310=1,1.000000e-01\n\
        Convolution c1 1 1 b c 0=8 1=3 5=1 6=576 9=2 -23310=1,1.000000e-01\n\
        Split s1 1 2 c c1 c2\n\
        Pooling gap 1 1 c2 g 0=1 4=1\n\
        InnerProduct f0 1 1 g h 0=2 1=1 2=16 9=1\n\
        InnerProduct f1 1 1 h k 0=8 1=1 2=16 9=4\n\
        BinaryOp se 2 1 c1 k d 0=2\n\
        Deconvolution up 1 1 d e 0=8 1=2 3=2 5=1 6=256 9=2 -23310=1,1.000000e-01\n\
        Crop skip 1 1 a1 f -23309=2,2,2 -23310=2,-2,-2 -23311=2,1,2\n\
        BinaryOp add 2 1 e f m 0=0\n\
        Deconvolution out 1 1 m out0 0=3 1=4 3=2 4=3 5=1 6=384\n";
    let mut rng = Lcg(seed);
    let mut value = |scale: f32| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
    let mut bin = Vec::new();
    for (n, bias, scale) in
        [(216, 8, 0.6), (256, 8, 0.4), (576, 8, 0.3), (16, 2, 0.5), (16, 8, 1.0), (256, 8, 0.4), (384, 3, 0.2)]
    {
        bin.extend(0u32.to_le_bytes());
        (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
        (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
    }
    (param.to_string(), bin)
}
