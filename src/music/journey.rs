//! Music that travels on its own: with `journey=drift` the key, mode, tempo,
//! intensity and the pad's sound wander a step every couple of minutes; with
//! `journey=daylight` they follow the listener's local hour (passed in as
//! `hour`, so the server stays deterministic): brighter modes and livelier
//! playing by day, darker and slower at night (Eno's Reflection, Endel).
//!
//! Every step lands on a phrase boundary, where the composer starts a new
//! phrase anyway, and is one notch only (a fifth, a neighbouring mode, a few
//! BPM, a tenth of intensity), so no step is a jump. The steps come from the
//! seed and the step's number alone: the same seed and hour travel the same
//! way, in a render, a download or a live stream.

use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::composer::{Composer, BEATS_PER_BAR};
use super::event::Event;
use super::params::Params;
use super::theory::{Mode, PitchClass};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Journey {
    #[default]
    Off,
    Drift,
    Daylight,
}

impl Journey {
    pub const ALL: [Journey; 3] = [Journey::Off, Journey::Drift, Journey::Daylight];

    pub fn name(self) -> &'static str {
        match self {
            Journey::Off => "off",
            Journey::Drift => "drift",
            Journey::Daylight => "daylight",
        }
    }
}

impl std::fmt::Display for Journey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Journey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Journey::ALL
            .into_iter()
            .find(|j| j.name() == s)
            .ok_or_else(|| {
                format!(
                    "journey must be off, drift or daylight, got \"{}\"",
                    s.chars().take(40).collect::<String>()
                )
            })
    }
}

/// The least time between steps: long enough for a setting to settle in
/// (a phrase or two), short enough that an hour holds twenty-odd steps.
pub const STEP_SECONDS: f64 = 120.0;
/// How far drift strays from where the listener started.
const BPM_REACH: f32 = 12.0;
const INTENSITY_REACH: f32 = 0.25;
const BPM_NOTCH: f32 = 4.0;
const INTENSITY_NOTCH: f32 = 0.1;
/// The modes from brightest to darkest (Locrian, with no stable tonic
/// triad, is never visited).
const BRIGHTNESS: [Mode; 6] = [
    Mode::Lydian,
    Mode::Ionian,
    Mode::Mixolydian,
    Mode::Dorian,
    Mode::Aeolian,
    Mode::Phrygian,
];

/// Drives a composer along a journey: asked before every eighth note, it
/// stages the next step at the first phrase start after [`STEP_SECONDS`].
#[derive(Debug, Clone)]
pub struct JourneyDriver {
    home: Params,
    steps: u32,
    next_at: f64,
}

impl JourneyDriver {
    pub fn new(home: Params) -> Self {
        Self {
            home,
            steps: 0,
            next_at: STEP_SECONDS,
        }
    }

    /// A listener's own change: the journey goes on from there.
    pub fn rehome(&mut self, home: Params, now: f64) {
        self.home = home;
        self.next_at = now + STEP_SECONDS;
    }

    /// Stages the next step on `composer` if one is due; true if it did.
    pub fn before_half(&mut self, composer: &mut Composer) -> bool {
        let current = composer.params();
        if current.journey == super::journey::Journey::Off
            || composer.seconds() < self.next_at
            || !composer.at_phrase_start()
        {
            return false;
        }
        self.steps += 1;
        let next = step(&self.home, current, self.steps, composer.seconds());
        self.next_at = composer.seconds() + STEP_SECONDS;
        composer.set_params(next);
        true
    }
}

/// `bars` bars as a listener hears them, the journey's steps included: the
/// same halves, staged the same way, as the live renderer composes, so a
/// MIDI file holds the notes of the audio rendered from the same parameters.
/// Sorted and self-contained, like [`Composer::compose_bars`].
pub fn compose_bars(params: &Params, bars: u32) -> Vec<Event> {
    let mut composer = Composer::new(params.clone());
    let mut journey = JourneyDriver::new(params.clone());
    let mut out = Vec::new();
    for _ in 0..u64::from(bars) * u64::from(BEATS_PER_BAR) * 2 {
        journey.before_half(&mut composer);
        composer.compose_half(&mut out);
    }
    composer.release_all(&mut out);
    out.sort();
    out
}

/// Step `n` of the journey from `home`, `seconds` into it, taken from
/// `current`.
pub fn step(home: &Params, current: &Params, n: u32, seconds: f64) -> Params {
    let mut rng =
        ChaCha8Rng::seed_from_u64(home.seed ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut next = current.clone();
    match current.journey {
        Journey::Off => {}
        Journey::Drift => drift(home, &mut next, &mut rng),
        Journey::Daylight => {
            let hour = (f64::from(current.hour) + seconds / 3600.0).rem_euclid(24.0);
            if !toward_daylight(home, &mut next, hour, &mut rng) {
                next.key = fifth(next.key, rng.gen_bool(0.5));
            }
        }
    }
    next
}

/// One notch of one of five things. The pad's sound is one of them: the
/// other pad program comes in under the sounding one (the renderer
/// crossfades a program change), as between two presets.
fn drift(home: &Params, p: &mut Params, rng: &mut ChaCha8Rng) {
    let up = rng.gen_bool(0.5);
    match rng.gen_range(0..5) {
        0 => p.key = fifth(p.key, up),
        4 => {
            let other = Params::PAD_PROGRAMS.iter().find(|&&q| q != p.pad_program);
            p.pad_program = other.copied().unwrap_or(p.pad_program);
        }
        1 => p.mode = neighbour(p.mode, if up { 1 } else { -1 }),
        2 => {
            let (lo, hi) = bpm_bounds(home);
            p.bpm = (p.bpm + if up { BPM_NOTCH } else { -BPM_NOTCH }).clamp(lo, hi);
        }
        _ => {
            let (lo, hi) = intensity_bounds(home);
            let notch = if up {
                INTENSITY_NOTCH
            } else {
                -INTENSITY_NOTCH
            };
            p.intensity = round2((p.intensity + notch).clamp(lo, hi));
        }
    }
}

/// Moves one of mode, tempo and intensity a notch toward the hour's target;
/// false when all three are there already.
fn toward_daylight(home: &Params, p: &mut Params, hour: f64, rng: &mut ChaCha8Rng) -> bool {
    // 0 at 02:00, 1 at 14:00.
    let light = 0.5 - 0.5 * ((hour - 2.0) / 24.0 * std::f64::consts::TAU).cos();
    let mode = BRIGHTNESS[((1.0 - light) * (BRIGHTNESS.len() - 1) as f64).round() as usize];
    let (lo, hi) = bpm_bounds(home);
    let bpm = (home.bpm * (0.85 + 0.3 * light as f32)).clamp(lo, hi);
    let (lo, hi) = intensity_bounds(home);
    let intensity = round2((home.intensity * (0.6 + 0.8 * light as f32)).clamp(lo, hi));
    let mut moves: Vec<u8> = Vec::with_capacity(3);
    if p.mode != mode {
        moves.push(0);
    }
    if (p.bpm - bpm).abs() >= 1.0 {
        moves.push(1);
    }
    if (p.intensity - intensity).abs() >= 0.01 {
        moves.push(2);
    }
    if moves.is_empty() {
        return false;
    }
    match moves[rng.gen_range(0..moves.len())] {
        0 => {
            let at = |m| BRIGHTNESS.iter().position(|x| *x == m);
            let toward = match (at(p.mode), at(mode)) {
                (Some(a), Some(b)) if b < a => -1,
                _ => 1,
            };
            p.mode = neighbour(p.mode, toward);
        }
        1 => p.bpm = p.bpm + (bpm - p.bpm).clamp(-BPM_NOTCH, BPM_NOTCH),
        _ => {
            let d = (intensity - p.intensity).clamp(-INTENSITY_NOTCH, INTENSITY_NOTCH);
            p.intensity = round2(p.intensity + d);
        }
    }
    true
}

fn bpm_bounds(home: &Params) -> (f32, f32) {
    let r = Params::BPM_RANGE;
    (
        (home.bpm - BPM_REACH).max(*r.start()),
        (home.bpm + BPM_REACH).min(*r.end()),
    )
}

fn intensity_bounds(home: &Params) -> (f32, f32) {
    let r = Params::INTENSITY_RANGE;
    (
        (home.intensity - INTENSITY_REACH).max(*r.start()),
        (home.intensity + INTENSITY_REACH).min(*r.end()),
    )
}

/// Intensity in hundredths, as the slider sets it.
fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}

/// A fifth up or down: the nearest key, one sharp or flat apart.
fn fifth(key: PitchClass, up: bool) -> PitchClass {
    let at = PitchClass::ALL.iter().position(|k| *k == key).unwrap_or(0);
    PitchClass::ALL[(at + if up { 7 } else { 5 }) % 12]
}

/// The next brighter (-1) or darker (+1) mode, staying on the scale.
fn neighbour(mode: Mode, toward: i32) -> Mode {
    let at = BRIGHTNESS.iter().position(|m| *m == mode).unwrap_or(3) as i32;
    BRIGHTNESS[(at + toward).clamp(0, BRIGHTNESS.len() as i32 - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::presets::FOCUS;

    /// An hour of a journey, composed only (no synthesis): every step, with
    /// the second it was staged at.
    fn an_hour(params: Params) -> Vec<(f64, Params)> {
        let mut composer = Composer::new(params.clone());
        let mut driver = JourneyDriver::new(params);
        let mut steps = Vec::new();
        let mut events = Vec::new();
        while composer.seconds() < 3600.0 {
            if driver.before_half(&mut composer) {
                steps.push((composer.seconds(), composer.params().clone()));
            }
            events.clear();
            composer.compose_half(&mut events);
        }
        steps
    }

    fn journey(journey: Journey, hour: f32, seed: u64) -> Params {
        Params {
            journey,
            hour,
            ..FOCUS.params(seed)
        }
    }

    #[test]
    fn drift_changes_something_every_few_minutes_stays_in_range_and_repeats() {
        for seed in [0, 7, 12_345] {
            let home = journey(Journey::Drift, 12.0, seed);
            let steps = an_hour(home.clone());
            assert!(steps.len() >= 20, "{} steps in an hour", steps.len());
            let mut last = (0.0, home.clone());
            for (at, p) in &steps {
                assert_eq!(p.validate(), Ok(()), "{p:?}");
                assert!((p.bpm - home.bpm).abs() <= BPM_REACH);
                assert!((p.intensity - home.intensity).abs() <= INTENSITY_REACH + 1e-6);
                assert!(at - last.0 <= 4.0 * 60.0, "a gap from {} to {at} s", last.0);
                assert!(at - last.0 >= STEP_SECONDS);
                last = (*at, p.clone());
            }
            assert!(
                steps
                    .iter()
                    .all(|(_, p)| Params::PAD_PROGRAMS.contains(&p.pad_program)),
                "the pad only moves between the composer's programs"
            );
            let changed = steps.windows(2).filter(|w| w[0].1 != w[1].1).count();
            assert!(
                changed * 10 >= steps.len() * 7,
                "{changed} of {} steps changed",
                steps.len()
            );
            assert_eq!(an_hour(home), steps, "deterministic per seed");
        }
        let pads = |seed| {
            an_hour(journey(Journey::Drift, 12.0, seed))
                .windows(2)
                .filter(|w| w[0].1.pad_program != w[1].1.pad_program)
                .count()
        };
        assert!(
            (0..3).map(pads).sum::<usize>() >= 3,
            "the pad's sound travels too"
        );
        assert_ne!(
            an_hour(journey(Journey::Drift, 12.0, 1)),
            an_hour(journey(Journey::Drift, 12.0, 2)),
            "two seeds travel apart"
        );
    }

    #[test]
    fn daylight_is_brighter_and_livelier_by_day_than_by_night() {
        let day = an_hour(journey(Journey::Daylight, 13.0, 3));
        let night = an_hour(journey(Journey::Daylight, 1.0, 3));
        let brightness = |m: Mode| BRIGHTNESS.iter().position(|x| *x == m).unwrap();
        let (d, n) = (&day.last().unwrap().1, &night.last().unwrap().1);
        assert!(
            brightness(d.mode) < brightness(n.mode),
            "{:?} by day, {:?} by night",
            d.mode,
            n.mode
        );
        assert!(d.bpm > n.bpm && d.intensity > n.intensity, "{d:?} / {n:?}");
        for (_, p) in day.iter().chain(&night) {
            assert_eq!(p.validate(), Ok(()));
        }
        assert_eq!(an_hour(journey(Journey::Daylight, 13.0, 3)), day);
    }

    #[test]
    fn a_composed_journey_holds_its_steps_and_without_one_is_the_plain_piece() {
        let plain = FOCUS.params(4);
        assert_eq!(
            compose_bars(&plain, 16),
            Composer::new(plain.clone()).compose_bars(16)
        );
        // 160 bars at 60 BPM: about 11 minutes, several drift steps.
        let home = journey(Journey::Drift, 12.0, 4);
        let travelled = compose_bars(&home, 160);
        let stayed = Composer::new(home.clone()).compose_bars(160);
        assert_ne!(travelled, stayed, "the steps change the notes");
        let early = travelled.iter().take_while(|e| e.frame < 60 * 44_100);
        let early_stayed = stayed.iter().take_while(|e| e.frame < 60 * 44_100);
        assert!(early.eq(early_stayed), "no step in the first minute");
        assert_eq!(compose_bars(&home, 160), travelled, "deterministic");
    }

    #[test]
    fn off_never_moves() {
        assert!(an_hour(FOCUS.params(5)).is_empty());
    }
}
