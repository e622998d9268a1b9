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

/// The 44-byte RIFF/WAVE header of 44.1 kHz 16-bit stereo PCM with
/// `data_bytes` of samples, as [`write_wav`] writes it; a stream of unknown
/// length says 0xFFFFFFFF, which players accept for streamed WAV (a real
/// size would make them stop after that many bytes).
pub fn header(data_bytes: Option<u32>) -> [u8; 44] {
    let channels = crate::CHANNELS;
    let rate = crate::SAMPLE_RATE;
    let block_align = channels * 2;
    let (riff, data) = match data_bytes {
        Some(n) => (n.saturating_add(36), n),
        None => (u32::MAX, u32::MAX),
    };
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
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

    #[test]
    fn header_is_what_write_wav_writes() {
        let samples = [1i16, -2, 3, -4];
        let mut buf = std::io::Cursor::new(Vec::new());
        write_wav(&mut buf, &samples).unwrap();
        let file = buf.into_inner();
        assert_eq!(file.len(), 44 + 8);
        assert_eq!(file[..44], header(Some(8)));
    }
}
