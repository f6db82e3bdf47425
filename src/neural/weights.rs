//! The binary half of an ncnn model (`.bin`): the weights of each weight-bearing layer in
//! layer order. A weight tensor starts with a 4-byte tag — `0x01306B47` for IEEE half floats
//! (padded to a multiple of 4 bytes), `0` for f32 — while biases and PReLU slopes are raw f32
//! without a tag. Everything is little-endian. Other encodings (int8, 8-bit tables) are
//! refused by name.

/// Reads tensors from a `.bin`, front to back.
pub(crate) struct WeightReader<'a> {
    data: &'a [u8],
    pos: usize,
}

const TAG_F16: u32 = 0x0130_6B47;
const TAG_INT8: u32 = 0x000D_4B38;

impl<'a> WeightReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        WeightReader { data, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!(
                "the .bin is truncated: {what} needs {n} bytes at offset {}, the file has {}",
                self.pos,
                self.data.len()
            )
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A tagged weight tensor of `count` values (f16 or f32 in the file), as f32.
    pub(super) fn tagged(&mut self, count: usize, what: &str) -> Result<Vec<f32>, String> {
        let tag = u32::from_le_bytes(self.take(4, what)?.try_into().map_err(|_| "tag")?);
        match tag {
            TAG_F16 => {
                let bytes = self.take(count.checked_mul(2).ok_or("size overflow")?, what)?;
                let v = bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
                self.take((4 - (count * 2) % 4) % 4, what)?;
                Ok(v)
            }
            0 => self.raw(count, what),
            TAG_INT8 => Err(format!("{what}: int8-quantised weights are not supported")),
            t => Err(format!("{what}: weight encoding {t:#010x} is not supported (f16 or f32 only)")),
        }
    }

    /// `count` raw f32 values (biases, slopes).
    pub(super) fn raw(&mut self, count: usize, what: &str) -> Result<Vec<f32>, String> {
        let bytes = self.take(count.checked_mul(4).ok_or("size overflow")?, what)?;
        let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        match v.iter().position(|x| !x.is_finite()) {
            Some(i) => Err(format!("{what}: value {i} is not a finite number")),
            None => Ok(v),
        }
    }

    /// Fails unless every byte was used.
    pub(super) fn finish(&self) -> Result<(), String> {
        if self.pos != self.data.len() {
            return Err(format!("the .bin has {} bytes the .param does not account for", self.data.len() - self.pos));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn half_and_float_tensors_and_truncation() {
        let mut b = TAG_F16.to_le_bytes().to_vec();
        for v in [1.0f32, -0.5, 2.0] {
            b.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
        b.extend_from_slice(&[0, 0]); // padding to 4 bytes
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0.25f32.to_le_bytes());
        b.extend_from_slice(&7.0f32.to_le_bytes());
        let mut r = WeightReader::new(&b);
        assert_eq!(r.tagged(3, "w").unwrap(), vec![1.0, -0.5, 2.0]);
        assert_eq!(r.tagged(1, "w2").unwrap(), vec![0.25]);
        assert_eq!(r.raw(1, "bias").unwrap(), vec![7.0]);
        r.finish().unwrap();
        assert!(r.raw(1, "more").unwrap_err().contains("truncated"));
        let mut r = WeightReader::new(&b[..8]);
        assert!(r.tagged(3, "w").unwrap_err().contains("truncated"));
        let q = TAG_INT8.to_le_bytes();
        assert!(WeightReader::new(&q).tagged(1, "w").unwrap_err().contains("int8"));
    }
}
