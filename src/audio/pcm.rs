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
    out.reserve(left.len() * 2);
    for (&l, &r) in left.iter().zip(right) {
        out.push(to_i16(l));
        out.push(to_i16(r));
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
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

    #[test]
    fn bytes_are_little_endian() {
        let mut out = Vec::new();
        to_le_bytes(&[0x0102, -2], &mut out);
        assert_eq!(out, vec![0x02, 0x01, 0xFE, 0xFF]);
    }
}
