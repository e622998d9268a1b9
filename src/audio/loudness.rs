//! Loudness as listeners' players measure it (ITU-R BS.1770 / EBU R128): the
//! K-weighting filter the leveller steers by, and full measurements (integrated
//! loudness, loudness range, true peak) of finished audio for tests, tools and
//! the README's tables.

use super::biquad::{Coefficients, StereoBiquad};

/// BS.1770's offset between the mean square of K-weighted audio and LUFS.
pub const LUFS_OFFSET: f64 = -0.691;

/// The BS.1770 pre-filter (a +4 dB shelf above ~1.7 kHz, the head's effect)
/// followed by the RLB high-pass (~38 Hz), for both channels.
#[derive(Debug, Clone, Copy)]
pub struct KWeighting {
    shelf: StereoBiquad,
    high_pass: StereoBiquad,
}

impl KWeighting {
    pub fn new(sample_rate: f64) -> Self {
        // The standard's analogue prototypes, bilinear-transformed for any rate.
        let shelf = Coefficients::high_shelf(
            1_681.974_450_955_533,
            3.999_843_853_973_347,
            0.707_175_236_955_419_6,
            0.499_666_774_154_541_6,
            sample_rate,
        );
        let high_pass =
            Coefficients::high_pass(38.135_470_876_024_44, 0.500_327_037_323_877_3, sample_rate);
        Self {
            shelf: StereoBiquad::new(shelf),
            high_pass: StereoBiquad::new(high_pass),
        }
    }

    /// The K-weighted power of one frame, summed over both channels (BS.1770
    /// weights left and right by 1).
    #[inline]
    pub fn power(&mut self, left: f32, right: f32) -> f64 {
        let [l, r] = self
            .high_pass
            .tick(self.shelf.tick([f64::from(left), f64::from(right)]));
        l * l + r * r
    }

    /// Adds [`KWeighting::power`] of every frame to `energy`, in frame order.
    ///
    /// # Safety
    /// The CPU has AVX.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub unsafe fn add_power_avx(&mut self, left: &[f32], right: &[f32], energy: f64) -> f64 {
        // SAFETY: the caller vouches for AVX.
        unsafe {
            super::biquad::cascade_power_avx(
                &mut self.shelf,
                &mut self.high_pass,
                left,
                right,
                energy,
            )
        }
    }
}

/// Mean K-weighted power → LUFS.
pub fn lufs(power: f64) -> f64 {
    LUFS_OFFSET + 10.0 * power.max(1e-20).log10()
}

/// LUFS → mean K-weighted power.
pub fn power_of(lufs: f64) -> f64 {
    10f64.powf((lufs - LUFS_OFFSET) / 10.0)
}

/// What a mastering engineer reads off a finished stereo file.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LoudnessReport {
    /// Integrated loudness, LUFS (gated: silence does not pull it down).
    pub integrated_lufs: f64,
    /// Loudness range, LU: how much the short-term loudness moves.
    pub range_lu: f64,
    /// Highest inter-sample peak of either channel, dBTP.
    pub true_peak_dbtp: f64,
    /// Mean of each channel, in full scale.
    pub dc: [f64; 2],
}

#[derive(Debug, thiserror::Error)]
#[error("loudness measurement failed: {0}")]
pub struct MeasureError(String);

/// Measures interleaved 16-bit stereo at the stream's rate.
pub fn measure_i16(interleaved: &[i16]) -> Result<LoudnessReport, MeasureError> {
    let err = |e: ebur128::Error| MeasureError(e.to_string());
    let mode = ebur128::Mode::I | ebur128::Mode::LRA | ebur128::Mode::TRUE_PEAK;
    let mut meter = ebur128::EbuR128::new(2, crate::SAMPLE_RATE, mode).map_err(err)?;
    meter.add_frames_i16(interleaved).map_err(err)?;
    let peak = meter
        .true_peak(0)
        .map_err(err)?
        .max(meter.true_peak(1).map_err(err)?);
    let frames = (interleaved.len() / 2).max(1) as f64;
    let mut sums = [0f64; 2];
    for frame in interleaved.chunks_exact(2) {
        sums[0] += f64::from(frame[0]);
        sums[1] += f64::from(frame[1]);
    }
    Ok(LoudnessReport {
        integrated_lufs: meter.loudness_global().map_err(err)?,
        range_lu: meter.loudness_range().map_err(err)?,
        true_peak_dbtp: 20.0 * peak.max(1e-10).log10(),
        dc: sums.map(|s| s / frames / 32_768.0),
    })
}

/// Integrated loudness alone (cheaper than a full report: no true peak).
pub fn integrated_lufs(interleaved: &[i16]) -> Result<f64, MeasureError> {
    let err = |e: ebur128::Error| MeasureError(e.to_string());
    let mut meter = ebur128::EbuR128::new(2, crate::SAMPLE_RATE, ebur128::Mode::I).map_err(err)?;
    meter.add_frames_i16(interleaved).map_err(err)?;
    meter.loudness_global().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
        let n = (seconds * 44_100.0) as usize;
        (0..n)
            .flat_map(|i| {
                let s = (amplitude
                    * (2.0 * std::f64::consts::PI * hz * i as f64 / 44_100.0).sin()
                    * 32_767.0) as i16;
                [s, s]
            })
            .collect()
    }

    #[test]
    fn a_full_scale_1khz_sine_on_both_channels_reads_about_zero_lufs() {
        // BS.1770: a 0 dBFS 997 Hz sine in one channel reads −3.01 LUFS, so in
        // two channels it reads about 0.
        let r = measure_i16(&sine(997.0, 1.0, 5.0)).unwrap();
        assert!((r.integrated_lufs - 0.0).abs() < 0.2, "{r:?}");
        assert!(r.true_peak_dbtp.abs() < 0.2, "{r:?}");
    }

    #[test]
    fn the_k_weighting_agrees_with_the_reference_meter() {
        let pcm = sine(440.0, 0.25, 5.0);
        let mut k = KWeighting::new(44_100.0);
        let mut sum = 0.0;
        let frames = pcm.len() / 2;
        for f in pcm.chunks_exact(2) {
            sum += k.power(f32::from(f[0]) / 32_767.0, f32::from(f[1]) / 32_767.0);
        }
        let ours = lufs(sum / frames as f64);
        let reference = measure_i16(&pcm).unwrap().integrated_lufs;
        assert!(
            (ours - reference).abs() < 0.1,
            "ours {ours}, ebur128 {reference}"
        );
    }

    #[test]
    fn dc_is_reported_per_channel() {
        let pcm: Vec<i16> = (0..44_100).flat_map(|_| [3_277i16, 0]).collect();
        let r = measure_i16(&pcm).unwrap();
        assert!((r.dc[0] - 0.1).abs() < 1e-3 && r.dc[1] == 0.0, "{r:?}");
    }

    #[test]
    fn lufs_and_power_are_inverse() {
        for l in [-40.0, -16.0, 0.0] {
            assert!((lufs(power_of(l)) - l).abs() < 1e-9);
        }
    }
}
