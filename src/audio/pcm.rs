//! The wire and file sample format: signed 16-bit little-endian, stereo
//! interleaved, cut into 100 ms chunks.

/// One chunk is 100 ms: short enough that a control change is heard quickly,
/// long enough that per-message overhead stays small (the brief, §4.1).
pub const CHUNK_MS: u32 = 100;
pub const CHUNK_FRAMES: usize = (crate::SAMPLE_RATE * CHUNK_MS / 1000) as usize;
pub const CHUNK_BYTES: usize = CHUNK_FRAMES * crate::CHANNELS as usize * 2;

/// Converts limited f32 samples to interleaved i16. Values are clamped, so an
/// out-of-range sample saturates instead of wrapping around to the opposite sign.
pub fn interleave_i16(left: &[f32], right: &[f32], out: &mut Vec<i16>) {
    let n = left.len().min(right.len());
    let start = out.len();
    out.resize(start + 2 * n, 0);
    for ((o, &l), &r) in out[start..].chunks_exact_mut(2).zip(left).zip(right) {
        o[0] = to_i16(l);
        o[1] = to_i16(r);
    }
}

/// `(x * 32767).round()` saturated to i16, written so that it vectorises:
/// `f32::round` (half away from zero) is a library call on x86-64's baseline,
/// while a truncating conversion and two compares are single instructions.
/// After the clamp |v| ≤ 32768, so the truncation and `v - t` are exact and
/// the result equals the rounded one for every input, NaN (→ 0) included.
/// NaN is taken out before the conversion, so it needs no saturating `as`
/// (whose NaN and range checks keep the loop scalar).
#[inline]
fn to_i16(x: f32) -> i16 {
    let v = (x * 32767.0).clamp(-32768.0, 32767.0);
    let v = if v.is_nan() { 0.0 } else { v };
    // SAFETY: `v` is finite and within ±32768, so it fits an i32.
    let t = unsafe { v.to_int_unchecked::<i32>() };
    let frac = v - t as f32;
    (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i16
}

/// Little-endian bytes of interleaved samples, as sent on the wire.
pub fn to_le_bytes(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_is_100_ms_of_stereo_16_bit() {
        assert_eq!(CHUNK_FRAMES, 4_410);
        assert_eq!(CHUNK_BYTES, 17_640);
    }

    #[test]
    fn out_of_range_samples_saturate_rather_than_wrap() {
        let mut out = Vec::new();
        interleave_i16(&[1.5, -2.0, 0.5], &[f32::MAX, f32::MIN, -0.5], &mut out);
        assert_eq!(out, vec![32767, 32767, -32768, -32768, 16384, -16384]);
    }

    /// Every f32 from −1.1 to 1.1 in steps of a few ulps, the exact ties
    /// (k + 0.5) / 32767 and their neighbours, and the specials.
    #[test]
    fn conversion_equals_rounding_then_clamping() {
        let reference = |x: f32| (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
        let mut xs: Vec<f32> = vec![0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        for k in -32_800..32_800 {
            let tie = (k as f32 + 0.5) / 32767.0;
            xs.extend([
                tie,
                f32::from_bits(tie.to_bits() + 1),
                f32::from_bits(tie.to_bits() - 1),
            ]);
        }
        let mut bits = (-1.1f32).to_bits();
        while f32::from_bits(bits) < 0.0 {
            xs.push(f32::from_bits(bits));
            bits -= 61;
        }
        let mut bits = 0u32;
        while f32::from_bits(bits) < 1.1 {
            xs.push(f32::from_bits(bits));
            bits += 61;
        }
        for x in xs {
            assert_eq!(to_i16(x), reference(x), "{x:e} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn bytes_are_little_endian() {
        let mut out = Vec::new();
        to_le_bytes(&[0x0102, -2], &mut out);
        assert_eq!(out, vec![0x02, 0x01, 0xFE, 0xFF]);
    }
}
