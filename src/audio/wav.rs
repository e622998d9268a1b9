//! WAV files of offline renders: 44.1 kHz, 16-bit, stereo, like the stream.

use std::io::{Seek, Write};

#[derive(Debug, thiserror::Error)]
#[error("cannot write WAV: {0}")]
pub struct WavError(#[from] hound::Error);

pub fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: crate::CHANNELS,
        sample_rate: crate::SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Writes interleaved stereo samples. hound writes no timestamps or other
/// varying metadata, so the same samples always give the same bytes.
pub fn write_wav<W: Write + Seek>(out: W, samples: &[i16]) -> Result<(), WavError> {
    let mut writer = hound::WavWriter::new(out, spec())?;
    let mut w = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        w.write_sample(s);
    }
    w.flush()?;
    writer.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_reader() {
        let samples: Vec<i16> = (0..200).map(|i| (i * 100 - 10_000) as i16).collect();
        let mut buf = std::io::Cursor::new(Vec::new());
        write_wav(&mut buf, &samples).unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(buf.into_inner())).unwrap();
        assert_eq!(reader.spec(), spec());
        let back: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, samples);
    }
}
