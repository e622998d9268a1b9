//! A general SoundFont 2.01 writer.
//!
//! Auralis needs to produce SoundFonts itself: the built-in font is generated
//! at startup so the server can make music with no font installed, and larger
//! fonts (such as a sampled grand piano) are assembled from audio files. Both
//! go through this builder, which owns the fiddly parts of the format (chunk
//! layout and padding, terminal records, generator order, the 46 zero frames
//! after every sample) so callers only describe samples, zones and presets.
//!
//! Builder misuse (a loop outside its sample, an unknown sample id, a zone
//! with the same generator twice, ...) is rejected when the item is added, so
//! [`SoundFontBuilder::write`] can only fail with I/O errors.

use std::convert::Infallible;
use std::io::{self, Write};

use thiserror::Error;

/// Names in preset, instrument and sample headers are 20 bytes; the last
/// byte is kept for the terminating NUL that readers may rely on.
const NAME_LEN: usize = 20;

/// The specification requires at least 46 zero frames after each sample so
/// interpolating readers never read into the next one.
const SAMPLE_GUARD_FRAMES: usize = 46;

/// The specification forbids loops shorter than this many frames.
const MIN_LOOP_FRAMES: u32 = 32;

/// Most INFO strings are limited to 256 bytes including the terminator;
/// comments (where attributions live) may be much longer.
const INFO_TEXT_LIMIT: usize = 256;
const INFO_COMMENT_LIMIT: usize = 65_536;

/// Index records (bags, generator indices, sample and instrument ids) are
/// 16-bit in the file, which bounds how many of each a font can hold.
const MAX_RECORDS: usize = u16::MAX as usize;

/// RIFF sizes are 32-bit; leave room for the INFO and pdta chunks.
const MAX_SAMPLE_BYTES: u64 = u32::MAX as u64 - (16 << 20);

/// Sample header `sfSampleType` values.
const MONO_SAMPLE: u16 = 1;
const RIGHT_SAMPLE: u16 = 2;
const LEFT_SAMPLE: u16 = 4;

/// Generators the builder places itself, because their position in a zone
/// is fixed by the specification.
const GEN_KEY_RANGE: u16 = 43;
const GEN_VEL_RANGE: u16 = 44;
const GEN_INSTRUMENT: u16 = 41;
const GEN_SAMPLE_ID: u16 = 53;

/// Ways to misuse the builder, reported when the offending item is added.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Sf2Error {
    #[error("sample {name:?} has no audio data")]
    EmptySample { name: String },
    #[error("sample {name:?} has a sample rate of 0 Hz")]
    ZeroSampleRate { name: String },
    #[error("sample {name:?}: loop {start}..{end} must lie within its {len} frames and span at least 32 frames")]
    InvalidLoop {
        name: String,
        start: u32,
        end: u32,
        len: usize,
    },
    #[error("stereo pair {left:?}/{right:?} must have the same length and loop")]
    StereoMismatch { left: String, right: String },
    #[error("instrument {name:?} has no zones")]
    NoZones { name: String },
    #[error("sample id {0} does not belong to this font")]
    UnknownSample(usize),
    #[error("instrument id {0} does not belong to this font")]
    UnknownInstrument(usize),
    #[error("range {lo}..={hi} is not a valid key or velocity range")]
    InvalidRange { lo: u8, hi: u8 },
    #[error("generator {0:?} appears twice in one zone")]
    DuplicateGenerator(GeneratorKind),
    #[error("bank {bank} program {program} is not a valid preset number")]
    InvalidPresetNumber { bank: u16, program: u16 },
    #[error("bank {bank} program {program} already has a preset")]
    DuplicatePreset { bank: u16, program: u16 },
    #[error("the font exceeds the SoundFont 2 limit on {0}")]
    TooLarge(&'static str),
}

/// Refers to a sample added to one particular builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleId(u16);

/// Refers to an instrument added to one particular builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstrumentId(u16);

/// One mono recording and how it is pitched and looped.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    pub name: String,
    pub data: Vec<i16>,
    pub sample_rate: u32,
    /// MIDI key at which the sample plays unchanged.
    pub root_key: u8,
    /// Cents added on playback; lets generated samples render at a
    /// convenient frequency and still play in tune.
    pub pitch_correction_cents: i8,
    /// Loop start (inclusive) and end (exclusive) frames within `data`.
    pub loop_range: Option<(u32, u32)>,
}

/// Generators a zone may set with a plain 16-bit amount.
///
/// Key range, velocity range, sample id and instrument are not here: the
/// builder writes them itself so their mandatory positions in a zone (ranges
/// first, ids last) cannot be got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum GeneratorKind {
    StartAddrsOffset = 0,
    EndAddrsOffset = 1,
    StartloopAddrsOffset = 2,
    EndloopAddrsOffset = 3,
    StartAddrsCoarseOffset = 4,
    ModLfoToPitch = 5,
    VibLfoToPitch = 6,
    ModEnvToPitch = 7,
    /// Absolute cents, see [`absolute_cents`].
    InitialFilterFc = 8,
    /// Centibels above DC gain.
    InitialFilterQ = 9,
    ModLfoToFilterFc = 10,
    ModEnvToFilterFc = 11,
    EndAddrsCoarseOffset = 12,
    ModLfoToVolume = 13,
    /// 0.1 % units.
    ChorusEffectsSend = 15,
    /// 0.1 % units.
    ReverbEffectsSend = 16,
    /// −500 (left) to 500 (right).
    Pan = 17,
    DelayModLfo = 21,
    FreqModLfo = 22,
    DelayVibLfo = 23,
    FreqVibLfo = 24,
    DelayModEnv = 25,
    AttackModEnv = 26,
    HoldModEnv = 27,
    DecayModEnv = 28,
    /// 0.1 % units of full scale.
    SustainModEnv = 29,
    ReleaseModEnv = 30,
    KeynumToModEnvHold = 31,
    KeynumToModEnvDecay = 32,
    DelayVolEnv = 33,
    /// Timecents, see [`timecents`].
    AttackVolEnv = 34,
    HoldVolEnv = 35,
    DecayVolEnv = 36,
    /// Centibels of attenuation, see [`centibels`].
    SustainVolEnv = 37,
    ReleaseVolEnv = 38,
    KeynumToVolEnvHold = 39,
    KeynumToVolEnvDecay = 40,
    StartloopAddrsCoarseOffset = 45,
    Keynum = 46,
    Velocity = 47,
    /// Centibels, see [`centibels`].
    InitialAttenuation = 48,
    EndloopAddrsCoarseOffset = 50,
    CoarseTune = 51,
    FineTune = 52,
    /// See [`SampleMode`].
    SampleModes = 54,
    ScaleTuning = 56,
    ExclusiveClass = 57,
    OverridingRootKey = 58,
}

impl GeneratorKind {
    /// The generator's operator number in the file.
    pub const fn oper(self) -> u16 {
        self as u16
    }
}

/// Values of the `sampleModes` generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleMode {
    NoLoop,
    /// Loop for as long as the voice sounds, release included.
    LoopContinuously,
    /// Loop while the key is held, then play on to the end of the sample.
    LoopUntilRelease,
}

impl SampleMode {
    /// The generator amount for this mode.
    pub const fn amount(self) -> i16 {
        match self {
            SampleMode::NoLoop => 0,
            SampleMode::LoopContinuously => 1,
            SampleMode::LoopUntilRelease => 3,
        }
    }
}

/// One instrument zone: a sample mapped onto keys and velocities.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub sample: SampleId,
    pub key_range: (u8, u8),
    pub vel_range: (u8, u8),
    pub generators: Vec<(GeneratorKind, i16)>,
}

impl Zone {
    /// A zone over `key_range` for every velocity, with no generators.
    pub fn new(sample: SampleId, key_range: (u8, u8)) -> Self {
        Self {
            sample,
            key_range,
            vel_range: (0, 127),
            generators: Vec::new(),
        }
    }

    /// Restricts the zone to a velocity layer.
    pub fn velocities(mut self, lo: u8, hi: u8) -> Self {
        self.vel_range = (lo, hi);
        self
    }

    /// Adds a generator.
    pub fn with(mut self, kind: GeneratorKind, amount: i16) -> Self {
        self.generators.push((kind, amount));
        self
    }
}

/// Converts seconds to the timecents envelope generators use; 0 s and below
/// map to the shortest time the format can express.
pub fn timecents(seconds: f32) -> i16 {
    if seconds.is_nan() || seconds <= 0.001 {
        return -12_000;
    }
    (1200.0 * seconds.log2()).round().clamp(-12_000.0, 8_000.0) as i16
}

/// Converts a level in decibels of attenuation to centibels, clamped to the
/// 0–144 dB range the attenuation generators accept.
pub fn centibels(db: f32) -> i16 {
    if db.is_nan() {
        return 0;
    }
    (db * 10.0).round().clamp(0.0, 1440.0) as i16
}

/// Converts a frequency to absolute cents (cents above 8.176 Hz), the unit of
/// the filter cutoff and LFO frequency generators; 0 Hz and below map to
/// the lowest value.
pub fn absolute_cents(hz: f32) -> i16 {
    if hz.is_nan() || hz <= 0.0 {
        return i16::MIN;
    }
    (1200.0 * (hz / 8.175_799).log2())
        .round()
        .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

struct StoredSample {
    name: [u8; NAME_LEN],
    data: Vec<i16>,
    sample_rate: u32,
    root_key: u8,
    pitch_correction: i8,
    loop_range: Option<(u32, u32)>,
    link: u16,
    kind: u16,
}

/// A zone already reduced to its generator records, in file order.
type ZoneRecords = Vec<(u16, u16)>;

struct StoredInstrument {
    name: [u8; NAME_LEN],
    zones: Vec<ZoneRecords>,
}

struct StoredPreset {
    name: [u8; NAME_LEN],
    bank: u16,
    program: u16,
    zones: Vec<ZoneRecords>,
}

/// Builds a SoundFont 2.01 file in memory from samples, instruments and
/// presets.
pub struct SoundFontBuilder {
    name: String,
    copyright: String,
    comment: String,
    samples: Vec<StoredSample>,
    sample_bytes: u64,
    instruments: Vec<StoredInstrument>,
    instrument_zone_count: usize,
    instrument_generator_count: usize,
    presets: Vec<StoredPreset>,
}

impl SoundFontBuilder {
    /// Starts an empty font whose bank name (INAM) is `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            copyright: String::new(),
            comment: String::new(),
            samples: Vec::new(),
            sample_bytes: 0,
            instruments: Vec::new(),
            instrument_zone_count: 0,
            instrument_generator_count: 0,
            presets: Vec::new(),
        }
    }

    /// Sets the copyright (ICOP) and comment (ICMT); attributions belong in
    /// the comment, which may be long.
    pub fn info(&mut self, copyright: &str, comment: &str) -> &mut Self {
        self.copyright = copyright.to_owned();
        self.comment = comment.to_owned();
        self
    }

    /// Adds a mono sample.
    pub fn add_sample(&mut self, spec: SampleSpec) -> Result<SampleId, Sf2Error> {
        self.push_sample(spec, MONO_SAMPLE, 0)
    }

    /// Adds a linked stereo pair, which players that honour links (such as
    /// FluidSynth) play as one stereo voice. Both halves must have the same
    /// length and loop.
    pub fn add_stereo_sample(
        &mut self,
        left: SampleSpec,
        right: SampleSpec,
    ) -> Result<(SampleId, SampleId), Sf2Error> {
        if left.data.len() != right.data.len() || left.loop_range != right.loop_range {
            return Err(Sf2Error::StereoMismatch {
                left: left.name,
                right: right.name,
            });
        }
        validate_sample(&left)?;
        validate_sample(&right)?;
        if self.samples.len() + 2 > MAX_RECORDS {
            return Err(Sf2Error::TooLarge("samples"));
        }
        let bytes =
            self.sample_bytes + sample_bytes(left.data.len()) + sample_bytes(right.data.len());
        if bytes > MAX_SAMPLE_BYTES {
            return Err(Sf2Error::TooLarge("sample data"));
        }
        let next = self.samples.len() as u16;
        let left_id = self.store_sample(left, LEFT_SAMPLE, next + 1);
        let right_id = self.store_sample(right, RIGHT_SAMPLE, next);
        Ok((left_id, right_id))
    }

    fn push_sample(
        &mut self,
        spec: SampleSpec,
        kind: u16,
        link: u16,
    ) -> Result<SampleId, Sf2Error> {
        validate_sample(&spec)?;
        if self.samples.len() >= MAX_RECORDS {
            return Err(Sf2Error::TooLarge("samples"));
        }
        if self.sample_bytes + sample_bytes(spec.data.len()) > MAX_SAMPLE_BYTES {
            return Err(Sf2Error::TooLarge("sample data"));
        }
        Ok(self.store_sample(spec, kind, link))
    }

    fn store_sample(&mut self, spec: SampleSpec, kind: u16, link: u16) -> SampleId {
        self.sample_bytes += sample_bytes(spec.data.len());
        let id = SampleId(self.samples.len() as u16);
        self.samples.push(StoredSample {
            name: fixed_name(&spec.name),
            data: spec.data,
            sample_rate: spec.sample_rate,
            root_key: spec.root_key,
            pitch_correction: spec.pitch_correction_cents,
            loop_range: spec.loop_range,
            link,
            kind,
        });
        id
    }

    /// Adds an instrument made of `zones`.
    pub fn add_instrument(
        &mut self,
        name: &str,
        zones: Vec<Zone>,
    ) -> Result<InstrumentId, Sf2Error> {
        self.add_instrument_with_global(name, Vec::new(), zones)
    }

    /// Adds an instrument whose global zone sets defaults that every zone
    /// inherits unless it sets the same generator itself. An empty `global`
    /// writes no global zone.
    pub fn add_instrument_with_global(
        &mut self,
        name: &str,
        global: Vec<(GeneratorKind, i16)>,
        zones: Vec<Zone>,
    ) -> Result<InstrumentId, Sf2Error> {
        if zones.is_empty() {
            return Err(Sf2Error::NoZones {
                name: name.to_owned(),
            });
        }
        if self.instruments.len() >= MAX_RECORDS {
            return Err(Sf2Error::TooLarge("instruments"));
        }
        let mut records: Vec<ZoneRecords> = Vec::with_capacity(zones.len() + 1);
        if !global.is_empty() {
            records.push(plain_generators(&global)?);
        }
        for zone in &zones {
            if usize::from(zone.sample.0) >= self.samples.len() {
                return Err(Sf2Error::UnknownSample(usize::from(zone.sample.0)));
            }
            let mut gens = range_generators(zone.key_range, zone.vel_range)?;
            gens.extend(plain_generators(&zone.generators)?);
            gens.push((GEN_SAMPLE_ID, zone.sample.0));
            records.push(gens);
        }
        let zone_count = self.instrument_zone_count + records.len();
        let generator_count =
            self.instrument_generator_count + records.iter().map(Vec::len).sum::<usize>();
        if zone_count > MAX_RECORDS || generator_count > MAX_RECORDS {
            return Err(Sf2Error::TooLarge("instrument zones"));
        }
        self.instrument_zone_count = zone_count;
        self.instrument_generator_count = generator_count;
        let id = InstrumentId(self.instruments.len() as u16);
        self.instruments.push(StoredInstrument {
            name: fixed_name(name),
            zones: records,
        });
        Ok(id)
    }

    /// Adds a preset that plays `instrument` over the whole keyboard.
    pub fn add_preset(
        &mut self,
        name: &str,
        bank: u16,
        program: u16,
        instrument: InstrumentId,
    ) -> Result<&mut Self, Sf2Error> {
        if program > 127 || bank > 128 {
            return Err(Sf2Error::InvalidPresetNumber { bank, program });
        }
        if usize::from(instrument.0) >= self.instruments.len() {
            return Err(Sf2Error::UnknownInstrument(usize::from(instrument.0)));
        }
        if self
            .presets
            .iter()
            .any(|p| p.bank == bank && p.program == program)
        {
            return Err(Sf2Error::DuplicatePreset { bank, program });
        }
        if self.presets.len() >= MAX_RECORDS - 1 {
            return Err(Sf2Error::TooLarge("presets"));
        }
        self.presets.push(StoredPreset {
            name: fixed_name(name),
            bank,
            program,
            zones: vec![vec![(GEN_INSTRUMENT, instrument.0)]],
        });
        Ok(self)
    }

    /// Writes the complete SF2 file.
    pub fn write<W: Write>(&self, w: &mut W) -> io::Result<()> {
        self.emit(&mut |bytes: &[u8]| w.write_all(bytes))
    }

    /// The complete SF2 file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let info = self.info_list();
        let pdta = self.pdta_list();
        let mut out = Vec::with_capacity(self.file_len(&info, &pdta));
        let result: Result<(), Infallible> =
            self.emit_parts(&info, &pdta, &mut |bytes: &[u8]| {
                out.extend_from_slice(bytes);
                Ok(())
            });
        match result {
            Ok(()) => out,
            Err(never) => match never {},
        }
    }

    fn emit<E>(&self, put: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let info = self.info_list();
        let pdta = self.pdta_list();
        self.emit_parts(&info, &pdta, put)
    }

    fn file_len(&self, info: &[u8], pdta: &[u8]) -> usize {
        8 + self.riff_body_len(info, pdta) as usize
    }

    fn riff_body_len(&self, info: &[u8], pdta: &[u8]) -> u32 {
        let sdta = 4 + 8 + self.sample_bytes;
        (4 + info.len() as u64 + 8 + sdta + pdta.len() as u64) as u32
    }

    fn emit_parts<E>(
        &self,
        info: &[u8],
        pdta: &[u8],
        put: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        put(b"RIFF")?;
        put(&self.riff_body_len(info, pdta).to_le_bytes())?;
        put(b"sfbk")?;
        put(info)?;

        let smpl_len = self.sample_bytes as u32;
        put(b"LIST")?;
        put(&(4 + 8 + smpl_len).to_le_bytes())?;
        put(b"sdta")?;
        put(b"smpl")?;
        put(&smpl_len.to_le_bytes())?;
        let guard = [0u8; SAMPLE_GUARD_FRAMES * 2];
        let mut buf = Vec::with_capacity(8192);
        for sample in &self.samples {
            for block in sample.data.chunks(4096) {
                buf.clear();
                buf.extend(block.iter().flat_map(|s| s.to_le_bytes()));
                put(&buf)?;
            }
            put(&guard)?;
        }

        put(pdta)
    }

    fn info_list(&self) -> Vec<u8> {
        let mut body = b"INFO".to_vec();
        push_chunk(&mut body, b"ifil", &[2, 0, 1, 0]);
        push_chunk(&mut body, b"isng", &zstr("EMU8000", INFO_TEXT_LIMIT));
        push_chunk(&mut body, b"INAM", &zstr(&self.name, INFO_TEXT_LIMIT));
        if !self.copyright.is_empty() {
            push_chunk(&mut body, b"ICOP", &zstr(&self.copyright, INFO_TEXT_LIMIT));
        }
        if !self.comment.is_empty() {
            push_chunk(&mut body, b"ICMT", &zstr(&self.comment, INFO_COMMENT_LIMIT));
        }
        push_chunk(&mut body, b"ISFT", &zstr("Auralis", INFO_TEXT_LIMIT));
        let mut list = Vec::with_capacity(body.len() + 8);
        push_chunk(&mut list, b"LIST", &body);
        list
    }

    fn pdta_list(&self) -> Vec<u8> {
        let mut phdr = Vec::new();
        let mut pbag = Vec::new();
        let mut pgen = Vec::new();
        let (mut bag_index, mut gen_index) = (0u16, 0u16);
        for preset in &self.presets {
            phdr.extend_from_slice(&preset.name);
            push_u16(&mut phdr, preset.program);
            push_u16(&mut phdr, preset.bank);
            push_u16(&mut phdr, bag_index);
            phdr.extend_from_slice(&[0; 12]);
            push_zones(
                &preset.zones,
                &mut pbag,
                &mut pgen,
                &mut bag_index,
                &mut gen_index,
            );
        }
        phdr.extend_from_slice(&fixed_name("EOP"));
        phdr.extend_from_slice(&[0; 4]);
        push_u16(&mut phdr, bag_index);
        phdr.extend_from_slice(&[0; 12]);
        push_u16(&mut pbag, gen_index);
        push_u16(&mut pbag, 0);
        pgen.extend_from_slice(&[0; 4]);

        let mut inst = Vec::new();
        let mut ibag = Vec::new();
        let mut igen = Vec::new();
        let (mut bag_index, mut gen_index) = (0u16, 0u16);
        for instrument in &self.instruments {
            inst.extend_from_slice(&instrument.name);
            push_u16(&mut inst, bag_index);
            push_zones(
                &instrument.zones,
                &mut ibag,
                &mut igen,
                &mut bag_index,
                &mut gen_index,
            );
        }
        inst.extend_from_slice(&fixed_name("EOI"));
        push_u16(&mut inst, bag_index);
        push_u16(&mut ibag, gen_index);
        push_u16(&mut ibag, 0);
        igen.extend_from_slice(&[0; 4]);

        let mut shdr = Vec::with_capacity((self.samples.len() + 1) * 46);
        let mut start = 0u32;
        for sample in &self.samples {
            let len = sample.data.len() as u32;
            let end = start + len;
            let (loop_start, loop_end) = match sample.loop_range {
                Some((s, e)) => (start + s, start + e),
                None => (start, end),
            };
            shdr.extend_from_slice(&sample.name);
            for v in [start, end, loop_start, loop_end, sample.sample_rate] {
                shdr.extend_from_slice(&v.to_le_bytes());
            }
            shdr.push(sample.root_key);
            shdr.extend_from_slice(&sample.pitch_correction.to_le_bytes());
            push_u16(&mut shdr, sample.link);
            push_u16(&mut shdr, sample.kind);
            start = end + SAMPLE_GUARD_FRAMES as u32;
        }
        shdr.extend_from_slice(&fixed_name("EOS"));
        shdr.extend_from_slice(&[0; 26]);

        let mut body = b"pdta".to_vec();
        push_chunk(&mut body, b"phdr", &phdr);
        push_chunk(&mut body, b"pbag", &pbag);
        push_chunk(&mut body, b"pmod", &[0; 10]);
        push_chunk(&mut body, b"pgen", &pgen);
        push_chunk(&mut body, b"inst", &inst);
        push_chunk(&mut body, b"ibag", &ibag);
        push_chunk(&mut body, b"imod", &[0; 10]);
        push_chunk(&mut body, b"igen", &igen);
        push_chunk(&mut body, b"shdr", &shdr);
        let mut list = Vec::with_capacity(body.len() + 8);
        push_chunk(&mut list, b"LIST", &body);
        list
    }
}

fn validate_sample(spec: &SampleSpec) -> Result<(), Sf2Error> {
    if spec.data.is_empty() {
        return Err(Sf2Error::EmptySample {
            name: spec.name.clone(),
        });
    }
    if spec.sample_rate == 0 {
        return Err(Sf2Error::ZeroSampleRate {
            name: spec.name.clone(),
        });
    }
    if let Some((start, end)) = spec.loop_range {
        if start >= end || end - start < MIN_LOOP_FRAMES || end as usize > spec.data.len() {
            return Err(Sf2Error::InvalidLoop {
                name: spec.name.clone(),
                start,
                end,
                len: spec.data.len(),
            });
        }
    }
    Ok(())
}

fn sample_bytes(frames: usize) -> u64 {
    (frames as u64 + SAMPLE_GUARD_FRAMES as u64) * 2
}

/// Key and velocity ranges must open a zone, key range first; full ranges
/// are left out because they are the default.
fn range_generators(keys: (u8, u8), vels: (u8, u8)) -> Result<ZoneRecords, Sf2Error> {
    let mut gens = Vec::with_capacity(2);
    for (oper, (lo, hi)) in [(GEN_KEY_RANGE, keys), (GEN_VEL_RANGE, vels)] {
        if lo > hi || hi > 127 {
            return Err(Sf2Error::InvalidRange { lo, hi });
        }
        if (lo, hi) != (0, 127) {
            gens.push((oper, u16::from_le_bytes([lo, hi])));
        }
    }
    Ok(gens)
}

fn plain_generators(gens: &[(GeneratorKind, i16)]) -> Result<ZoneRecords, Sf2Error> {
    let mut out: ZoneRecords = Vec::with_capacity(gens.len());
    for &(kind, amount) in gens {
        if out.iter().any(|&(oper, _)| oper == kind.oper()) {
            return Err(Sf2Error::DuplicateGenerator(kind));
        }
        out.push((kind.oper(), amount as u16));
    }
    Ok(out)
}

fn push_zones(
    zones: &[ZoneRecords],
    bags: &mut Vec<u8>,
    gens: &mut Vec<u8>,
    bag_index: &mut u16,
    gen_index: &mut u16,
) {
    for zone in zones {
        push_u16(bags, *gen_index);
        push_u16(bags, 0);
        for &(oper, amount) in zone {
            push_u16(gens, oper);
            push_u16(gens, amount);
        }
        *gen_index += zone.len() as u16;
        *bag_index += 1;
    }
}

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a RIFF chunk, padding odd bodies to an even length as RIFF
/// requires (the size field keeps the unpadded length).
fn push_chunk(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

/// A NUL-terminated INFO string, truncated to `limit` bytes including the
/// terminator and padded to an even length as the specification requires.
fn zstr(text: &str, limit: usize) -> Vec<u8> {
    let clean: String = text.chars().filter(|&c| c != '\0').collect();
    let mut keep = clean.len().min(limit - 2);
    while !clean.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut bytes = clean.as_bytes()[..keep].to_vec();
    bytes.push(0);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

/// A 20-byte header name: ASCII only (other characters become `_`),
/// truncated to 19 bytes so it is always NUL-terminated.
fn fixed_name(name: &str) -> [u8; NAME_LEN] {
    let mut out = [0u8; NAME_LEN];
    for (slot, c) in out.iter_mut().zip(name.chars().take(NAME_LEN - 1)) {
        *slot = if c.is_ascii_graphic() || c == ' ' {
            c as u8
        } else {
            b'_'
        };
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::Arc;

    use rustysynth::{LoopMode, SoundFont, Synthesizer, SynthesizerSettings};

    fn sine(len: usize, period: usize) -> Vec<i16> {
        (0..len)
            .map(|i| {
                let phase = (i % period) as f32 / period as f32;
                (12_000.0 * (std::f32::consts::TAU * phase).sin()) as i16
            })
            .collect()
    }

    fn spec(name: &str, data: Vec<i16>, loop_range: Option<(u32, u32)>) -> SampleSpec {
        SampleSpec {
            name: name.to_owned(),
            data,
            sample_rate: 44_100,
            root_key: 69,
            pitch_correction_cents: -3,
            loop_range,
        }
    }

    /// Two instruments (one with a global zone and velocity layers), two
    /// presets, a looped and an unlooped sample: every structure the writer
    /// emits appears at least once.
    fn example() -> SoundFontBuilder {
        let mut b = SoundFontBuilder::new("Test Font");
        b.info("(c) nobody", "odd-length comment");
        let looped = b
            .add_sample(spec("looped sine", sine(4_000, 100), Some((1_000, 3_000))))
            .unwrap();
        let plain = b
            .add_sample(spec("one shot", sine(2_001, 50), None))
            .unwrap();
        let lead = b
            .add_instrument_with_global(
                "Lead",
                vec![
                    (GeneratorKind::ReleaseVolEnv, timecents(1.0)),
                    (
                        GeneratorKind::SampleModes,
                        SampleMode::LoopContinuously.amount(),
                    ),
                ],
                vec![
                    Zone::new(looped, (0, 59))
                        .velocities(0, 63)
                        .with(GeneratorKind::InitialAttenuation, centibels(6.0)),
                    Zone::new(looped, (0, 59)).velocities(64, 127),
                    Zone::new(plain, (60, 127))
                        .with(GeneratorKind::SampleModes, SampleMode::NoLoop.amount())
                        .with(GeneratorKind::OverridingRootKey, 72),
                ],
            )
            .unwrap();
        let shot = b
            .add_instrument("Shot", vec![Zone::new(plain, (0, 127))])
            .unwrap();
        b.add_preset("Lead Preset", 0, 5, lead).unwrap();
        b.add_preset("Shot Preset", 1, 0, shot).unwrap();
        b
    }

    fn load(bytes: &[u8]) -> SoundFont {
        SoundFont::new(&mut Cursor::new(bytes)).expect("rustysynth loads the font")
    }

    /// Top-level and sub-chunk ids with their sizes, checking that every size
    /// stays inside its parent and bodies are padded to even lengths.
    fn chunks(bytes: &[u8]) -> Vec<(String, usize)> {
        fn walk(bytes: &[u8], out: &mut Vec<(String, usize)>) {
            let mut pos = 0;
            while pos < bytes.len() {
                let id = String::from_utf8_lossy(&bytes[pos..pos + 4]).into_owned();
                let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
                let body = &bytes[pos + 8..pos + 8 + size];
                if id == "LIST" {
                    out.push((String::from_utf8_lossy(&body[..4]).into_owned(), size));
                    walk(&body[4..], out);
                } else {
                    out.push((id, size));
                }
                pos += 8 + size + size % 2;
            }
            assert_eq!(pos, bytes.len());
        }
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"sfbk");
        let size = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(size + 8, bytes.len());
        let mut out = Vec::new();
        walk(&bytes[12..], &mut out);
        out
    }

    fn chunk_body<'a>(bytes: &'a [u8], wanted: &[u8; 4]) -> &'a [u8] {
        let pos = bytes
            .windows(4)
            .position(|w| w == wanted)
            .expect("chunk present");
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        &bytes[pos + 8..pos + 8 + size]
    }

    #[test]
    fn layout_follows_the_specification() {
        let bytes = example().to_bytes();
        assert_eq!(bytes.len() % 2, 0);
        let ids: Vec<String> = chunks(&bytes).into_iter().map(|(id, _)| id).collect();
        let expected = [
            "INFO", "ifil", "isng", "INAM", "ICOP", "ICMT", "ISFT", "sdta", "smpl", "pdta", "phdr",
            "pbag", "pmod", "pgen", "inst", "ibag", "imod", "igen", "shdr",
        ];
        assert_eq!(ids, expected);
        let sizes: std::collections::HashMap<String, usize> = chunks(&bytes).into_iter().collect();
        assert_eq!(sizes["phdr"], 3 * 38);
        assert_eq!(sizes["pbag"], 3 * 4);
        assert_eq!(sizes["pmod"], 10);
        assert_eq!(sizes["pgen"], 3 * 4);
        assert_eq!(sizes["inst"], 3 * 22);
        assert_eq!(sizes["ibag"], 6 * 4);
        assert_eq!(sizes["imod"], 10);
        assert_eq!(sizes["shdr"], 3 * 46);
        assert_eq!(sizes["smpl"], (4_000 + 46 + 2_001 + 46) * 2);
        assert_eq!(sizes["ifil"], 4);
        assert_eq!(sizes["isng"], 8);
        assert_eq!(chunk_body(&bytes, b"isng"), b"EMU8000\0");
        assert_eq!(chunk_body(&bytes, b"ifil"), [2, 0, 1, 0]);
        for id in ["INAM", "ICOP", "ICMT", "ISFT"] {
            assert_eq!(sizes[id] % 2, 0, "{id} is padded to even length");
        }

        let smpl = chunk_body(&bytes, b"smpl");
        let frames: Vec<i16> = smpl
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert!(frames[4_000..4_046].iter().all(|&s| s == 0));
        assert!(frames[frames.len() - 46..].iter().all(|&s| s == 0));
        assert_eq!(&frames[4_046..4_046 + 2_001], &sine(2_001, 50)[..]);

        let shdr = chunk_body(&bytes, b"shdr");
        assert_eq!(&shdr[2 * 46..2 * 46 + 4], b"EOS\0");
        let inst = chunk_body(&bytes, b"inst");
        assert_eq!(&inst[2 * 22..2 * 22 + 4], b"EOI\0");
        assert_eq!(u16::from_le_bytes([inst[64], inst[65]]), 5, "EOI bag index");
        let phdr = chunk_body(&bytes, b"phdr");
        assert_eq!(&phdr[2 * 38..2 * 38 + 4], b"EOP\0");
        assert_eq!(
            u16::from_le_bytes([phdr[2 * 38 + 24], phdr[2 * 38 + 25]]),
            2
        );
    }

    #[test]
    fn generators_follow_the_order_rules() {
        let bytes = example().to_bytes();
        let igen: Vec<(u16, u16)> = chunk_body(&bytes, b"igen")
            .chunks(4)
            .map(|g| {
                (
                    u16::from_le_bytes([g[0], g[1]]),
                    u16::from_le_bytes([g[2], g[3]]),
                )
            })
            .collect();
        let ibag: Vec<usize> = chunk_body(&bytes, b"ibag")
            .chunks(4)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        assert_eq!(*igen.last().unwrap(), (0, 0), "terminal generator");
        assert_eq!(*ibag.last().unwrap(), igen.len() - 1);
        let zones: Vec<&[(u16, u16)]> = ibag.windows(2).map(|w| &igen[w[0]..w[1]]).collect();
        assert_eq!(zones.len(), 5);
        assert_eq!(
            zones[0],
            [(38, timecents(1.0) as u16), (54, 1)],
            "global zone"
        );
        assert_eq!(zones[1][0], (43, u16::from_le_bytes([0, 59])));
        assert_eq!(zones[1][1], (44, u16::from_le_bytes([0, 63])));
        assert_eq!(zones[2][1], (44, u16::from_le_bytes([64, 127])));
        for zone in &zones[1..] {
            assert_eq!(zone.last().unwrap().0, 53, "sampleID closes every zone");
        }
        assert_eq!(zones[4], [(53, 1)], "full ranges are left out");
        let pgen = chunk_body(&bytes, b"pgen");
        assert_eq!(&pgen[..4], [41, 0, 0, 0]);
        assert_eq!(&pgen[4..8], [41, 0, 1, 0]);
    }

    #[test]
    fn rustysynth_reads_back_what_was_written() {
        let bytes = example().to_bytes();
        let font = load(&bytes);
        let info = font.get_info();
        assert_eq!(info.get_bank_name(), "Test Font");
        assert_eq!(info.get_copyright(), "(c) nobody");
        assert_eq!(info.get_comments(), "odd-length comment");
        assert_eq!(info.get_tools(), "Auralis");
        assert_eq!(info.get_target_sound_engine(), "EMU8000");
        assert_eq!(info.get_version().get_major(), 2);
        assert_eq!(info.get_version().get_minor(), 1);

        let headers = font.get_sample_headers();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].get_name(), "looped sine");
        assert_eq!((headers[0].get_start(), headers[0].get_end()), (0, 4_000));
        assert_eq!(
            (headers[0].get_start_loop(), headers[0].get_end_loop()),
            (1_000, 3_000)
        );
        assert_eq!(headers[0].get_original_pitch(), 69);
        assert_eq!(headers[0].get_pitch_correction(), -3);
        assert_eq!(headers[0].get_sample_rate(), 44_100);
        assert_eq!(headers[0].get_sample_type(), 1);
        assert_eq!(headers[1].get_name(), "one shot");
        assert_eq!(
            (headers[1].get_start(), headers[1].get_end()),
            (4_046, 6_047)
        );

        let instruments = font.get_instruments();
        assert_eq!(instruments.len(), 2);
        assert_eq!(instruments[0].get_name(), "Lead");
        let regions = instruments[0].get_regions();
        assert_eq!(regions.len(), 3, "the global zone is not a region");
        assert_eq!(
            (
                regions[0].get_key_range_start(),
                regions[0].get_key_range_end()
            ),
            (0, 59)
        );
        assert_eq!(
            (
                regions[0].get_velocity_range_start(),
                regions[0].get_velocity_range_end()
            ),
            (0, 63)
        );
        assert_eq!(regions[0].get_sample_modes(), LoopMode::Continuous);
        assert_eq!(regions[0].get_initial_attenuation(), 6.0);
        assert!((regions[1].get_release_volume_envelope() - 1.0).abs() < 1e-3);
        assert_eq!(regions[1].get_sample_start_loop(), 1_000);
        assert_eq!(regions[2].get_sample_modes(), LoopMode::NoLoop);
        assert_eq!(regions[2].get_root_key(), 72);
        assert_eq!(regions[2].get_sample_id(), 1);

        let presets = font.get_presets();
        assert_eq!(presets.len(), 2);
        assert_eq!(presets[0].get_name(), "Lead Preset");
        assert_eq!(
            (presets[0].get_bank_number(), presets[0].get_patch_number()),
            (0, 5)
        );
        assert_eq!(presets[0].get_regions()[0].get_instrument_id(), 0);
        assert_eq!(
            (presets[1].get_bank_number(), presets[1].get_patch_number()),
            (1, 0)
        );
        assert_eq!(presets[1].get_regions()[0].get_instrument_id(), 1);
    }

    #[test]
    fn written_font_plays_in_rustysynth() {
        let font = Arc::new(load(&example().to_bytes()));
        let mut settings = SynthesizerSettings::new(44_100);
        settings.enable_reverb_and_chorus = false;
        let mut synth = Synthesizer::new(&font, &settings).unwrap();
        synth.process_midi_message(0, 0xC0, 5, 0);
        synth.note_on(0, 57, 100);
        let (mut left, mut right) = (vec![0.0; 44_100], vec![0.0; 44_100]);
        synth.render(&mut left, &mut right);
        let tail_peak = left[30_000..].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(
            tail_peak > 0.01,
            "the loop keeps the note sounding: {tail_peak}"
        );
    }

    #[test]
    fn write_matches_to_bytes() {
        let b = example();
        let mut written = Vec::new();
        b.write(&mut written).unwrap();
        assert_eq!(written, b.to_bytes());
    }

    #[test]
    fn names_are_truncated_and_terminated() {
        assert_eq!(
            &fixed_name("A name longer than twenty bytes")[..],
            b"A name longer than \0"
        );
        assert_eq!(&fixed_name("Pad \u{e9}t\u{e9}")[..9], b"Pad _t_\0\0");
        assert_eq!(zstr("abc", 256), b"abc\0");
        assert_eq!(zstr("ab", 256), b"ab\0\0");
        let long = "\u{e9}".repeat(200);
        let z = zstr(&long, 256);
        assert!(z.len() <= 256 && z.len().is_multiple_of(2));
        assert!(std::str::from_utf8(&z[..z.iter().position(|&b| b == 0).unwrap()]).is_ok());
    }

    #[test]
    fn misuse_is_rejected() {
        let mut b = SoundFontBuilder::new("x");
        let loop_error = b.add_sample(spec("bad loop", vec![1; 100], Some((50, 101))));
        assert!(matches!(loop_error, Err(Sf2Error::InvalidLoop { .. })));
        let short = b.add_sample(spec("short loop", vec![1; 100], Some((10, 20))));
        assert!(matches!(short, Err(Sf2Error::InvalidLoop { .. })));
        assert!(matches!(
            b.add_sample(spec("empty", Vec::new(), None)),
            Err(Sf2Error::EmptySample { .. })
        ));
        let mut zero_rate = spec("zero rate", vec![1; 10], None);
        zero_rate.sample_rate = 0;
        assert!(matches!(
            b.add_sample(zero_rate),
            Err(Sf2Error::ZeroSampleRate { .. })
        ));
        assert!(matches!(
            b.add_stereo_sample(spec("l", vec![1; 10], None), spec("r", vec![1; 11], None)),
            Err(Sf2Error::StereoMismatch { .. })
        ));

        let mut other = SoundFontBuilder::new("other");
        other.add_sample(spec("a", vec![1; 10], None)).unwrap();
        let foreign = other.add_sample(spec("b", vec![1; 10], None)).unwrap();
        let own = b.add_sample(spec("own", vec![1; 10], None)).unwrap();
        assert_eq!(
            b.add_instrument("i", vec![Zone::new(foreign, (0, 127))]),
            Err(Sf2Error::UnknownSample(1))
        );
        assert!(matches!(
            b.add_instrument("i", Vec::new()),
            Err(Sf2Error::NoZones { .. })
        ));
        assert_eq!(
            b.add_instrument("i", vec![Zone::new(own, (60, 59))]),
            Err(Sf2Error::InvalidRange { lo: 60, hi: 59 })
        );
        assert_eq!(
            b.add_instrument("i", vec![Zone::new(own, (0, 127)).velocities(0, 128)]),
            Err(Sf2Error::InvalidRange { lo: 0, hi: 128 })
        );
        let twice = Zone::new(own, (0, 127))
            .with(GeneratorKind::Pan, 10)
            .with(GeneratorKind::Pan, 20);
        assert_eq!(
            b.add_instrument("i", vec![twice]),
            Err(Sf2Error::DuplicateGenerator(GeneratorKind::Pan))
        );
        let instrument = b
            .add_instrument("i", vec![Zone::new(own, (0, 127))])
            .unwrap();
        assert!(b.add_preset("p", 0, 128, instrument).is_err());
        assert!(b.add_preset("p", 129, 0, instrument).is_err());
        b.add_preset("p", 0, 0, instrument).unwrap();
        assert!(matches!(
            b.add_preset("q", 0, 0, instrument),
            Err(Sf2Error::DuplicatePreset {
                bank: 0,
                program: 0
            })
        ));
        assert_eq!(
            b.add_preset("q", 0, 1, InstrumentId(7)).err(),
            Some(Sf2Error::UnknownInstrument(7))
        );
        let font = load(&b.to_bytes());
        assert_eq!(
            font.get_sample_headers().len(),
            1,
            "rejected samples leave no trace"
        );
    }

    #[test]
    fn stereo_pairs_are_linked() {
        let mut b = SoundFontBuilder::new("stereo");
        let (l, r) = b
            .add_stereo_sample(
                spec("L", sine(500, 50), None),
                spec("R", sine(500, 50), None),
            )
            .unwrap();
        let instrument = b
            .add_instrument(
                "st",
                vec![
                    Zone::new(l, (0, 127)).with(GeneratorKind::Pan, -500),
                    Zone::new(r, (0, 127)).with(GeneratorKind::Pan, 500),
                ],
            )
            .unwrap();
        b.add_preset("st", 0, 0, instrument).unwrap();
        let font = load(&b.to_bytes());
        let h = font.get_sample_headers();
        assert_eq!((h[0].get_sample_type(), h[0].get_link()), (4, 1));
        assert_eq!((h[1].get_sample_type(), h[1].get_link()), (2, 0));
    }

    #[test]
    fn unit_helpers() {
        assert_eq!(timecents(1.0), 0);
        assert_eq!(timecents(2.0), 1200);
        assert_eq!(timecents(0.5), -1200);
        assert_eq!(timecents(0.0), -12_000);
        assert_eq!(timecents(1e6), 8_000);
        assert_eq!(centibels(6.0), 60);
        assert_eq!(centibels(-3.0), 0);
        assert_eq!(centibels(200.0), 1440);
        assert_eq!(absolute_cents(8.175_799), 0);
        assert_eq!(absolute_cents(440.0), 6900);
        assert_eq!(absolute_cents(20_000.0), 13_508);
    }

    /// Asks the `fluidsynth` command about one note of `program`; `None`
    /// when the command is not installed, so the check is skipped.
    pub(crate) fn fluidsynth_complaints(sf2: &[u8], program: u8, key: u8) -> Option<Vec<String>> {
        if !crate::soundfont::fluidsynth_check::installed() {
            return None;
        }
        let path = std::env::temp_dir().join(format!(
            "auralis-sf2-test-{}-{program}-{key}-{}.sf2",
            std::process::id(),
            sf2.len()
        ));
        std::fs::write(&path, sf2).unwrap();
        let complaints = crate::soundfont::fluidsynth_check::complaints(&path, program, &[key]);
        let _ = std::fs::remove_file(&path);
        Some(complaints.unwrap())
    }

    #[test]
    fn fluidsynth_loads_the_font_when_installed() {
        let Some(complaints) = fluidsynth_complaints(&example().to_bytes(), 5, 57) else {
            return;
        };
        assert!(complaints.is_empty(), "{complaints:?}");
    }
}
