//! 44.1 kHz → 48 kHz for Opus, which only takes 8/12/16/24/48 kHz.
//!
//! An FFT resampler (rubato) with its band-limiting filter: linear or
//! nearest-sample conversion would fold everything above 20 kHz back into the
//! audible band and dull the top octave, which ambient pads and reverb tails
//! make easy to hear. 48,000 / 44,100 = 160 / 147, and a 100 ms chunk is
//! 30 × 147 frames, so every 4,410-frame chunk becomes exactly 4,800 frames
//! (five 20 ms Opus frames) with no fractional carry between chunks.

use rubato::{FftFixedInOut, Resampler as _};

use super::CHUNK_FRAMES;

/// Output rate: the only full-band rate Opus encodes.
pub const OPUS_RATE: u32 = 48_000;
/// Frames out per 100 ms chunk in.
pub const CHUNK_FRAMES_48K: usize = CHUNK_FRAMES * OPUS_RATE as usize / crate::SAMPLE_RATE as usize;

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot build the 44.1 → 48 kHz resampler: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
    #[error("a chunk must be {expected} interleaved stereo samples, got {got}")]
    ChunkSize { expected: usize, got: usize },
}

/// Stateful across chunks (the filter overlaps chunk edges), so one stream
/// needs one resampler fed every chunk in order.
pub struct To48k {
    inner: FftFixedInOut<f32>,
    planar_in: [Vec<f32>; 2],
    planar_out: [Vec<f32>; 2],
}

impl To48k {
    pub fn new() -> Result<Self, ResampleError> {
        let inner = FftFixedInOut::new(
            crate::SAMPLE_RATE as usize,
            OPUS_RATE as usize,
            CHUNK_FRAMES,
            2,
        )?;
        debug_assert_eq!(inner.input_frames_next(), CHUNK_FRAMES);
        debug_assert_eq!(inner.output_frames_next(), CHUNK_FRAMES_48K);
        Ok(Self {
            inner,
            planar_in: [vec![0.0; CHUNK_FRAMES], vec![0.0; CHUNK_FRAMES]],
            planar_out: [vec![0.0; CHUNK_FRAMES_48K], vec![0.0; CHUNK_FRAMES_48K]],
        })
    }

    /// Resamples one chunk of interleaved stereo i16 into interleaved f32
    /// (full scale ±1.0), replacing `out`'s contents.
    pub fn process(&mut self, chunk: &[i16], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        if chunk.len() != CHUNK_FRAMES * 2 {
            return Err(ResampleError::ChunkSize {
                expected: CHUNK_FRAMES * 2,
                got: chunk.len(),
            });
        }
        let [left, right] = &mut self.planar_in;
        for ((frame, l), r) in chunk
            .chunks_exact(2)
            .zip(left.iter_mut())
            .zip(right.iter_mut())
        {
            *l = f32::from(frame[0]) / 32768.0;
            *r = f32::from(frame[1]) / 32768.0;
        }
        self.inner
            .process_into_buffer(&self.planar_in, &mut self.planar_out, None)?;
        out.clear();
        out.reserve(CHUNK_FRAMES_48K * 2);
        for (&l, &r) in self.planar_out[0].iter().zip(&self.planar_out[1]) {
            out.push(l);
            out.push(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sine through the resampler keeps its frequency and level: after the
    /// filter's delay, the output matches the ideal 48 kHz sine closely.
    #[test]
    fn a_sine_keeps_pitch_and_level() {
        let mut rs = To48k::new().unwrap();
        let freq = 1_000.0f64;
        let mut out = Vec::new();
        let mut all = Vec::new();
        for c in 0..6 {
            let chunk: Vec<i16> = (0..CHUNK_FRAMES)
                .flat_map(|i| {
                    let t = (c * CHUNK_FRAMES + i) as f64 / 44_100.0;
                    let s = ((t * freq * std::f64::consts::TAU).sin() * 16_000.0) as i16;
                    [s, s]
                })
                .collect();
            rs.process(&chunk, &mut out).unwrap();
            assert_eq!(out.len(), CHUNK_FRAMES_48K * 2);
            all.extend(out.chunks_exact(2).map(|f| f64::from(f[0])));
        }
        // Skip the start-up (delay plus filter ramp); compare against the best
        // fitting phase of an ideal sine by correlation.
        let tail = &all[3 * CHUNK_FRAMES_48K..];
        let (mut sin_c, mut cos_c, mut energy) = (0.0, 0.0, 0.0);
        for (n, &x) in tail.iter().enumerate() {
            let w = n as f64 / 48_000.0 * freq * std::f64::consts::TAU;
            sin_c += x * w.sin();
            cos_c += x * w.cos();
            energy += x * x;
        }
        let amp = 2.0 * (sin_c * sin_c + cos_c * cos_c).sqrt() / tail.len() as f64;
        assert!((amp - 16_000.0 / 32_768.0).abs() < 0.01, "amplitude {amp}");
        // Nearly all energy sits at 1 kHz: no aliasing, no interpolation hash.
        let fitted = amp * amp / 2.0 * tail.len() as f64;
        assert!(fitted / energy > 0.999, "{}", fitted / energy);
    }

    #[test]
    fn a_wrong_sized_chunk_is_an_error_not_a_panic() {
        let mut rs = To48k::new().unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            rs.process(&[0; 10], &mut out),
            Err(ResampleError::ChunkSize { .. })
        ));
    }
}
