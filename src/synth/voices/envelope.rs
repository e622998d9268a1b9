//! The SF2 envelopes, advanced once per control block.
//!
//! The volume envelope keeps libfluidsynth's shape so levels match it: the
//! attack rises linearly in amplitude, decay and release fall linearly in
//! decibels over a 96 dB range (a stage's time is the time to cross all of
//! it), and the sustain level is read as dB below the peak on a 100 dB scale.
//! The modulation envelope is linear in its 0–1 value, except that its
//! attack follows the SF2 convex curve (a fast rise that slows), again as
//! libfluidsynth has it.

use super::zone::EnvelopeTimes;

/// The dynamic range the volume envelope's decay and release cross in their
/// stated times.
const RANGE_DB: f32 = 96.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Delay,
    Attack,
    Hold,
    Decay,
    Release,
    Done,
}

/// Stage lengths in frames and per-frame rates, worked out at note-on.
#[derive(Debug, Clone, Copy)]
struct Rates {
    delay: f32,
    attack: f32,
    hold: f32,
    /// Level change per frame while decaying and releasing (full scale = 1).
    decay_step: f32,
    release_step: f32,
    sustain: f32,
}

impl Rates {
    fn new(t: &EnvelopeTimes, sustain: f32, rate: f32) -> Self {
        // Stage times under a millisecond are clamped to one, as SF2's
        // −12000 timecents floor is, so that no stage divides by zero.
        let frames = |s: f32| (s * rate).max(1.0);
        Self {
            delay: (t.delay * rate).max(0.0),
            attack: frames(t.attack),
            hold: (t.hold * rate).max(0.0),
            decay_step: 1.0 / frames(t.decay),
            release_step: 1.0 / frames(t.release),
            sustain,
        }
    }
}

/// A delay–attack–hold–decay–sustain–release envelope whose `level` is the
/// stage position in 0–1: linear amplitude in the attack, and after it the
/// fraction of the envelope's range still above the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Volume,
    Modulation,
}

#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    shape: Shape,
    rates: Rates,
    stage: Stage,
    /// Frames spent in the current stage (delay, attack and hold only).
    elapsed: f32,
    level: f32,
}

impl Envelope {
    /// The volume envelope, whose sustain is dB below the peak.
    pub fn volume(t: &EnvelopeTimes, rate: f32) -> Self {
        let sustain = (1.0 - t.sustain / 100.0).max(0.0);
        Self::new(Shape::Volume, Rates::new(t, sustain, rate))
    }

    /// The modulation envelope, whose sustain is the level itself.
    pub fn modulation(t: &EnvelopeTimes, rate: f32) -> Self {
        let sustain = t.sustain.clamp(0.0, 1.0);
        Self::new(Shape::Modulation, Rates::new(t, sustain, rate))
    }

    fn new(shape: Shape, rates: Rates) -> Self {
        Self {
            shape,
            rates,
            stage: Stage::Delay,
            elapsed: 0.0,
            level: 0.0,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The level the envelope holds once its decay is over.
    pub fn sustain(&self) -> f32 {
        self.rates.sustain
    }

    /// The modulation envelope's output: its level, through the convex
    /// curve while in the attack.
    pub fn value(&self) -> f32 {
        if self.stage == Stage::Attack && self.shape == Shape::Modulation {
            convex(self.level)
        } else {
            self.level
        }
    }

    /// Moves the envelope on by `frames` frames, stage by stage, so that a
    /// stage shorter than a block still takes effect, and returns
    /// [`Envelope::value`].
    pub fn advance(&mut self, frames: f32) -> f32 {
        let mut left = frames;
        // Each pass either uses up `left` or finishes a stage; there are six.
        for _ in 0..6 {
            if left <= 0.0 {
                break;
            }
            let r = &self.rates;
            match self.stage {
                Stage::Delay | Stage::Attack | Stage::Hold => {
                    let length = match self.stage {
                        Stage::Delay => r.delay,
                        Stage::Attack => r.attack,
                        _ => r.hold,
                    };
                    let take = left.min(length - self.elapsed);
                    self.elapsed += take;
                    left -= take;
                    self.level = match self.stage {
                        Stage::Delay => 0.0,
                        Stage::Attack => self.elapsed / r.attack,
                        _ => 1.0,
                    };
                    if self.elapsed >= length {
                        self.elapsed = 0.0;
                        self.stage = match self.stage {
                            Stage::Delay => Stage::Attack,
                            Stage::Attack => Stage::Hold,
                            _ => Stage::Decay,
                        };
                    }
                }
                Stage::Decay => {
                    self.level = (self.level - left * r.decay_step).max(r.sustain);
                    left = 0.0;
                }
                Stage::Release => {
                    self.level -= left * r.release_step;
                    left = 0.0;
                    if self.level <= 0.0 {
                        self.level = 0.0;
                        self.stage = Stage::Done;
                    }
                }
                Stage::Done => left = 0.0,
            }
        }
        self.value()
    }

    /// Starts the release from wherever the envelope is. An attack in
    /// progress is converted to the position its output has on the release's
    /// scale (decibels for volume, linear for modulation), so the release
    /// starts from what was sounding instead of jumping.
    pub fn release(&mut self) {
        if self.stage >= Stage::Release {
            return;
        }
        if self.stage <= Stage::Attack {
            self.level = match self.shape {
                Shape::Volume if self.level > 0.0 => {
                    (1.0 + 20.0 * self.level.log10() / RANGE_DB).max(0.0)
                }
                Shape::Volume => 0.0,
                Shape::Modulation => self.value(),
            };
        }
        self.stage = Stage::Release;
    }
}

/// SF2's convex transform: 1 + (40/96)·log10(x), so 0 at −96 dB, clamped.
fn convex(x: f32) -> f32 {
    if x <= 0.0 {
        0.0
    } else {
        (1.0 + 40.0 / RANGE_DB * x.log10()).clamp(0.0, 1.0)
    }
}

/// The amplitude of a volume-envelope level.
pub fn volume_gain(env: &Envelope) -> f32 {
    gain_of(env.stage, env.level)
}

/// [`volume_gain`] for a voice's envelope block after block: a level that
/// has not moved since the last block (a sustain, a hold, a delay) keeps its
/// amplitude without another `exp2`.
#[derive(Debug, Clone, Copy)]
pub struct VolumeGain {
    stage: Stage,
    level: f32,
    gain: f32,
}

impl VolumeGain {
    pub fn new(env: &Envelope) -> Self {
        Self {
            stage: env.stage,
            level: env.level,
            gain: volume_gain(env),
        }
    }

    pub fn of(&mut self, env: &Envelope) -> f32 {
        if env.stage != self.stage || env.level.to_bits() != self.level.to_bits() {
            *self = Self::new(env);
        }
        self.gain
    }
}

fn gain_of(stage: Stage, level: f32) -> f32 {
    match stage {
        Stage::Delay | Stage::Done => 0.0,
        Stage::Attack => level,
        _ if level <= 0.0 => 0.0,
        _ => db_to_gain((level - 1.0) * RANGE_DB),
    }
}

/// The amplitude the volume envelope settles at if the key is held.
pub fn sustain_gain(env: &Envelope) -> f32 {
    gain_of(Stage::Decay, env.sustain())
}

pub fn db_to_gain(db: f32) -> f32 {
    (db * (std::f32::consts::LOG2_10 / 20.0)).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f32 = 44_100.0;

    fn times() -> EnvelopeTimes {
        EnvelopeTimes {
            delay: 0.01,
            attack: 0.1,
            hold: 0.05,
            decay: 1.0,
            sustain: 48.0,
            release: 0.5,
        }
    }

    #[test]
    fn volume_stages_follow_their_times() {
        let mut env = Envelope::volume(&times(), RATE);
        env.advance(0.005 * RATE);
        assert_eq!((env.stage(), volume_gain(&env)), (Stage::Delay, 0.0));
        // Half way up the attack: half the amplitude.
        env.advance(0.055 * RATE);
        assert_eq!(env.stage(), Stage::Attack);
        assert!(
            (volume_gain(&env) - 0.5).abs() < 1e-3,
            "{}",
            volume_gain(&env)
        );
        env.advance(0.08 * RATE);
        assert_eq!((env.stage(), volume_gain(&env)), (Stage::Hold, 1.0));
        // A quarter of the way into a 1 s decay: 24 dB down on the 96 dB scale.
        env.advance(0.27 * RATE);
        assert_eq!(env.stage(), Stage::Decay);
        let db = 20.0 * volume_gain(&env).log10();
        assert!((db + 24.0).abs() < 0.2, "{db}");
        // Sustain is 48 % of the 100 dB scale, 46.08 dB on the 96 dB one,
        // and the level stays there while the key is held.
        env.advance(10.0 * RATE);
        let db = 20.0 * volume_gain(&env).log10();
        assert!((db + 46.08).abs() < 0.01, "{db}");
        assert!((sustain_gain(&env) - volume_gain(&env)).abs() < 1e-9);
    }

    #[test]
    fn release_falls_96_db_in_its_time_then_ends() {
        let mut env = Envelope::volume(&times(), RATE);
        env.advance(5.0 * RATE);
        env.release();
        let before = 20.0 * volume_gain(&env).log10();
        env.advance(0.25 * RATE);
        let after = 20.0 * volume_gain(&env).log10();
        assert!((before - after - 48.0).abs() < 0.1, "{before} → {after}");
        env.advance(0.5 * RATE);
        assert_eq!((env.stage(), volume_gain(&env)), (Stage::Done, 0.0));
    }

    #[test]
    fn a_release_during_the_attack_starts_from_the_sounding_level() {
        let mut env = Envelope::volume(&times(), RATE);
        env.advance(0.035 * RATE); // a quarter of the way up the attack
        let sounding = volume_gain(&env);
        env.release();
        assert!((volume_gain(&env) - sounding).abs() < 1e-4);
        env.advance(1.0);
        assert!(volume_gain(&env) < sounding);
    }

    #[test]
    fn modulation_envelope_is_convex_in_the_attack_then_linear() {
        let t = EnvelopeTimes {
            sustain: 0.25,
            ..times()
        };
        let mut env = Envelope::modulation(&t, RATE);
        // A tenth of the way up the attack, the convex curve is already 58 %
        // of the way.
        let early = env.advance(0.02 * RATE);
        assert!((early - (1.0 - 40.0 / 96.0)).abs() < 1e-3, "{early}");
        assert_eq!(env.advance(0.14 * RATE), 1.0);
        assert!((env.advance(0.5 * RATE) - 0.5).abs() < 1e-3);
        assert_eq!(env.advance(2.0 * RATE), 0.25);
    }
}
