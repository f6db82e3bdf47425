//! TIFF LZW encoder (compression 5), following libtiff's conventions exactly: a Clear code
//! first, MSB-first codes from 9 to 12 bits, the width growing as soon as the next free code
//! no longer fits ("early change" as seen by the decoder), Clear when the table reaches 4094
//! entries, and the end code written at the width the decoder expects after the last entry.
//! (weezl's encoder writes that last code one width too early for the tiff crate's decoder.)

const CLEAR: u32 = 256;
const EOI: u32 = 257;
const FIRST: u32 = 258;
const CODE_MAX: u32 = 4095;
const HSIZE: usize = 1 << 13;
/// Bytes after the end code (see `encode`).
const TRAILER: usize = 16;

/// A reusable LZW encoder.
pub(crate) struct Lzw {
    keys: Vec<u32>,
    codes: Vec<u16>,
    gen: Vec<u32>,
    cur_gen: u32,
}

struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits<'_> {
    #[inline]
    fn put(&mut self, code: u32, width: u32) {
        self.acc = (self.acc << width) | code as u64;
        self.n += width;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
    }
    fn flush(&mut self) {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
            self.n = 0;
        }
    }
}

impl Lzw {
    pub(crate) fn new() -> Lzw {
        Lzw { keys: vec![0; HSIZE], codes: vec![0; HSIZE], gen: vec![0; HSIZE], cur_gen: 1 }
    }

    fn reset(&mut self) {
        self.cur_gen = self.cur_gen.wrapping_add(1);
        if self.cur_gen == 0 {
            self.gen.fill(0);
            self.cur_gen = 1;
        }
    }

    /// Appends the LZW encoding of `data` to `out`.
    pub(crate) fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut bits = Bits { out, acc: 0, n: 0 };
        let mut width = 9;
        let mut maxcode = 511;
        let mut free = FIRST;
        self.reset();
        bits.put(CLEAR, width);
        let Some((&first, rest)) = data.split_first() else {
            bits.put(EOI, width);
            bits.flush();
            return;
        };
        let mut ent = first as u32;
        for &c in rest {
            let key = (c as u32) << 12 | ent;
            let mut h = (key.wrapping_mul(0x9E37_79B1) >> 19) as usize & (HSIZE - 1);
            let mut found = None;
            while self.gen[h] == self.cur_gen {
                if self.keys[h] == key {
                    found = Some(self.codes[h] as u32);
                    break;
                }
                h = (h + 1) & (HSIZE - 1);
            }
            if let Some(code) = found {
                ent = code;
                continue;
            }
            bits.put(ent, width);
            ent = c as u32;
            self.gen[h] = self.cur_gen;
            self.keys[h] = key;
            self.codes[h] = free as u16;
            free += 1;
            if free == CODE_MAX - 1 {
                bits.put(CLEAR, width);
                self.reset();
                free = FIRST;
                width = 9;
                maxcode = 511;
            } else if free > maxcode {
                width += 1;
                maxcode = (1 << width) - 1;
            }
        }
        bits.put(ent, width);
        free += 1;
        if free == CODE_MAX - 1 {
            bits.put(CLEAR, width);
            width = 9;
        } else if free > maxcode {
            width += 1;
        }
        bits.put(EOI, width);
        bits.flush();
        // Padding after the end code. Decoders stop at the end code and never read it, but
        // weezl (inside the tiff crate) refills its bit buffer up to 8 bytes ahead and then
        // returns "no progress" when its input is empty while it still holds output of the
        // last code. More than 8 bytes keep its input non-empty until the end code is reached.
        bits.out.extend_from_slice(&[0; TRAILER]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(data: &[u8]) -> Vec<u8> {
        let mut d = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        let mut out = Vec::new();
        let r = d.into_vec(&mut out).decode(data);
        r.status.unwrap();
        assert!(d.has_ended(), "end code not seen");
        out
    }

    #[test]
    fn round_trips_through_weezl() {
        let mut rng = crate::digest::Lcg(1);
        let mut lzw = Lzw::new();
        for n in [0usize, 1, 2, 100, 511, 512, 4000, 70000] {
            for kind in 0..3 {
                let data: Vec<u8> = (0..n)
                    .map(|i| {
                        let s = rng.next();
                        match kind {
                            0 => (s >> 56) as u8,
                            1 => (i / 7) as u8,
                            _ => ((s >> 60) as u8) & 3,
                        }
                    })
                    .collect();
                let mut enc = Vec::new();
                lzw.encode(&data, &mut enc);
                assert_eq!(decode(&enc), data, "n={n} kind={kind}");
            }
        }
    }
}
