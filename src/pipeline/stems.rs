//! Stems: each layer of the mix on its own, dry and with reverb, lined up
//! with the mix sample for sample (`render --stems DIR`, and the balance
//! measurements of `soundcheck`). Every stage between a layer's fader and the
//! limiter is linear (the DC blocker, the reverb, the master gains), so each
//! stem goes through its own copy of them and the wet stems add up to the
//! mix, but for what the limiter's soft knee bends.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::calibration::Role;
use super::StemSink;
use crate::audio::wav::{spec, WavError};
use crate::audio::{pcm, DcBlocker, Reverb, ReverbSettings};

type Writer = hound::WavWriter<BufWriter<File>>;

/// Where finished stem samples go.
enum Output {
    Files { dry: Writer, wet: Writer },
    Memory { dry: Vec<i16>, wet: Vec<i16> },
}

struct Stem {
    role: Role,
    dc: DcBlocker,
    reverb: Reverb,
    dry: (Vec<f32>, Vec<f32>),
    wet: (Vec<f32>, Vec<f32>),
    output: Output,
}

const LAYERS: [(Role, &str); 2] = [(Role::Piano, "piano"), (Role::Pad, "pad")];

/// The layers' stems, written to WAV files or kept in memory.
pub struct Stems {
    stems: Vec<Stem>,
    paths: Vec<PathBuf>,
    error: Option<hound::Error>,
    scratch: Vec<i16>,
}

impl Stems {
    /// Writes `piano-dry.wav`, `piano.wav`, `pad-dry.wav` and `pad.wav` in `dir`.
    pub fn create(dir: &Path) -> Result<Self, WavError> {
        std::fs::create_dir_all(dir).map_err(hound::Error::IoError)?;
        let mut paths = Vec::new();
        let mut stems = Vec::new();
        for (role, name) in LAYERS {
            let mut open = |file: String| -> Result<Writer, WavError> {
                let path = dir.join(file);
                let w = hound::WavWriter::create(&path, spec())?;
                paths.push(path);
                Ok(w)
            };
            let output = Output::Files {
                dry: open(format!("{name}-dry.wav"))?,
                wet: open(format!("{name}.wav"))?,
            };
            stems.push(Stem::new(role, output));
        }
        Ok(Self {
            stems,
            paths,
            error: None,
            scratch: Vec::new(),
        })
    }

    /// Keeps the stems as interleaved 16-bit stereo, for measuring.
    pub fn in_memory() -> Self {
        let stems = LAYERS
            .iter()
            .map(|&(role, _)| {
                let output = Output::Memory {
                    dry: Vec::new(),
                    wet: Vec::new(),
                };
                Stem::new(role, output)
            })
            .collect();
        Self {
            stems,
            paths: Vec::new(),
            error: None,
            scratch: Vec::new(),
        }
    }

    /// A layer's samples with reverb, when kept in memory.
    pub fn wet(&self, role: Role) -> Option<&[i16]> {
        self.stems
            .iter()
            .find(|s| s.role == role)
            .and_then(|s| match &s.output {
                Output::Memory { wet, .. } => Some(wet.as_slice()),
                Output::Files { .. } => None,
            })
    }

    /// Closes every file and returns their paths; reports the first write
    /// error, if any.
    pub fn finish(self) -> Result<Vec<PathBuf>, WavError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        for s in self.stems {
            if let Output::Files { dry, wet } = s.output {
                dry.finalize()?;
                wet.finalize()?;
            }
        }
        Ok(self.paths)
    }
}

impl Stem {
    fn new(role: Role, output: Output) -> Self {
        Self {
            role,
            dc: DcBlocker::new(),
            reverb: Reverb::new(ReverbSettings::default()),
            dry: (Vec::new(), Vec::new()),
            wet: (Vec::new(), Vec::new()),
            output,
        }
    }
}

impl StemSink for Stems {
    fn layer(&mut self, role: Role, left: &[f32], right: &[f32]) {
        let Some(s) = self.stems.iter_mut().find(|s| s.role == role) else {
            return;
        };
        s.dry.0.clear();
        s.dry.0.extend_from_slice(left);
        s.dry.1.clear();
        s.dry.1.extend_from_slice(right);
        s.dc.process(&mut s.dry.0, &mut s.dry.1);
        s.wet.clone_from(&s.dry);
        s.reverb.process(&mut s.wet.0, &mut s.wet.1);
    }

    fn master_gain(&mut self, gains: &[f32]) {
        for s in &mut self.stems {
            for wet in [false, true] {
                let buf = if wet { &mut s.wet } else { &mut s.dry };
                for ((l, r), g) in buf.0.iter_mut().zip(buf.1.iter_mut()).zip(gains) {
                    *l *= g;
                    *r *= g;
                }
                self.scratch.clear();
                pcm::interleave_i16(&buf.0, &buf.1, &mut self.scratch);
                match (&mut s.output, wet) {
                    (Output::Memory { dry, .. }, false) => dry.extend_from_slice(&self.scratch),
                    (Output::Memory { wet, .. }, true) => wet.extend_from_slice(&self.scratch),
                    (Output::Files { dry, wet: w }, _) => {
                        let file = if wet { w } else { dry };
                        for &x in &self.scratch {
                            if let Err(e) = file.write_sample(x) {
                                self.error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
        }
    }
}
