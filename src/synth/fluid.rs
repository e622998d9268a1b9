//! The libfluidsynth 2.x backend (cargo feature `fluidsynth`): the reference
//! SoundFont synthesizer, kept beside rustysynth so the two can be compared on
//! the same notes and the same fonts, and as a fallback should a font sound
//! wrong through rustysynth.
//!
//! The bindings are hand-written for the dozen functions used (no bindgen, no
//! build script): the C API has been stable across 2.x.

use std::ffi::CString;
use std::io::Write;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::engine::{Engine, EngineSettings};
use crate::music::PIANO_CHANNEL;
use crate::soundfont::builtin_font;
use crate::soundfont::{FontSet, LoadedFont};

mod ffi {
    use std::marker::{PhantomData, PhantomPinned};
    use std::os::raw::{c_char, c_double, c_int, c_void};

    /// Opaque C types: never constructed or moved on the Rust side, and
    /// `!Send`/`!Sync`/`!Unpin` until a wrapper says otherwise.
    #[repr(C)]
    pub struct FluidSettings {
        _data: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    #[repr(C)]
    pub struct FluidSynth {
        _data: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    pub const FLUID_OK: c_int = 0;
    pub const FLUID_FAILED: c_int = -1;

    #[link(name = "fluidsynth")]
    extern "C" {
        pub fn new_fluid_settings() -> *mut FluidSettings;
        pub fn delete_fluid_settings(settings: *mut FluidSettings);
        pub fn fluid_settings_setnum(
            settings: *mut FluidSettings,
            name: *const c_char,
            val: c_double,
        ) -> c_int;
        pub fn fluid_settings_setint(
            settings: *mut FluidSettings,
            name: *const c_char,
            val: c_int,
        ) -> c_int;

        pub fn new_fluid_synth(settings: *mut FluidSettings) -> *mut FluidSynth;
        pub fn delete_fluid_synth(synth: *mut FluidSynth);
        pub fn fluid_synth_sfload(
            synth: *mut FluidSynth,
            filename: *const c_char,
            reset_presets: c_int,
        ) -> c_int;
        pub fn fluid_synth_program_select(
            synth: *mut FluidSynth,
            chan: c_int,
            sfont_id: c_int,
            bank_num: c_int,
            preset_num: c_int,
        ) -> c_int;
        pub fn fluid_synth_noteon(
            synth: *mut FluidSynth,
            chan: c_int,
            key: c_int,
            vel: c_int,
        ) -> c_int;
        pub fn fluid_synth_noteoff(synth: *mut FluidSynth, chan: c_int, key: c_int) -> c_int;
        pub fn fluid_synth_all_notes_off(synth: *mut FluidSynth, chan: c_int) -> c_int;
        pub fn fluid_synth_all_sounds_off(synth: *mut FluidSynth, chan: c_int) -> c_int;
        pub fn fluid_synth_write_float(
            synth: *mut FluidSynth,
            len: c_int,
            lout: *mut c_void,
            loff: c_int,
            lincr: c_int,
            rout: *mut c_void,
            roff: c_int,
            rincr: c_int,
        ) -> c_int;
    }
}

/// MIDI channels of a fluid synth with default settings.
const MIDI_CHANNELS: u8 = 16;
/// General MIDI's percussion channel: the composer never uses it, so it keeps
/// fluidsynth's drum-kit default rather than a melodic preset.
const DRUM_CHANNEL: u8 = 9;
/// Largest piece handed to `fluid_synth_write_float` at once, so the frame
/// count always fits its `int` argument.
const MAX_WRITE_FRAMES: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum FluidError {
    #[error("libfluidsynth could not allocate its settings")]
    Settings,
    #[error("libfluidsynth rejected the setting {name} = {value}")]
    Setting { name: &'static str, value: f64 },
    #[error("libfluidsynth could not create a synthesizer")]
    Synth,
    #[error("libfluidsynth could not load the SoundFont {path}")]
    FontLoad { path: PathBuf },
    #[error("cannot write the built-in font to {path} for libfluidsynth: {source}")]
    TempFont {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One libfluidsynth synthesizer holding both fonts: channel 0 plays from the
/// piano font, every other channel from the pad font, each selected by font
/// id so a program present in both fonts still comes from the right one.
///
/// Like the rustysynth backend, fluid's own reverb and chorus are off: reverb
/// is applied once on the mix by `audio::reverb`, so both engines go through
/// the very same effects and a comparison measures the synthesizers alone.
pub struct FluidEngine {
    // Field order is drop order: the synth refers to its settings, and may
    // read the built-in font's file until it is deleted.
    synth: Synth,
    _settings: Settings,
    piano_font: c_int,
    pad_font: c_int,
    _builtin_file: Option<Arc<TempFont>>,
}

/// Owns one `fluid_settings_t`.
struct Settings(NonNull<ffi::FluidSettings>);

impl Drop for Settings {
    fn drop(&mut self) {
        // SAFETY: returned by new_fluid_settings, freed only here, and every
        // synth using it is gone (see `FluidEngine`'s field order).
        unsafe { ffi::delete_fluid_settings(self.0.as_ptr()) }
    }
}

/// Owns one `fluid_synth_t`.
struct Synth(NonNull<ffi::FluidSynth>);

impl Drop for Synth {
    fn drop(&mut self) {
        // SAFETY: returned by new_fluid_synth and freed only here.
        unsafe { ffi::delete_fluid_synth(self.0.as_ptr()) }
    }
}

// SAFETY: the engine exclusively owns its synth and settings (nothing else
// holds the pointers, and each is freed once, on drop), libfluidsynth keeps
// no per-thread state for a synth, and its API is documented thread-safe
// (`synth.threadsafe-api` is left at its default, on). The type is not `Sync`
// and every call goes through `&mut self`, so moving it to another render
// thread between calls is all that ever happens.
unsafe impl Send for FluidEngine {}

impl FluidEngine {
    pub fn new(fonts: &FontSet, settings: EngineSettings) -> Result<Self, FluidError> {
        // libfluidsynth is not safe to build synths in on two threads at
        // once: two engines built together (two sessions starting, two
        // tests) left the reference playing FluidR3's key 36 8.9 dB off in
        // 3 of 6 runs here, and 0 of 8 with this lock. Building takes a few
        // ms, on the pool, before any audio.
        static BUILDING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = BUILDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: no preconditions; a null result is handled.
        let mut fluid_settings = Settings(
            NonNull::new(unsafe { ffi::new_fluid_settings() }).ok_or(FluidError::Settings)?,
        );
        let polyphony = settings.polyphony.clamp(8, 256) as c_int;
        fluid_settings.set_num(c"synth.sample-rate", f64::from(crate::SAMPLE_RATE))?;
        fluid_settings.set_num(c"synth.gain", f64::from(settings.gain))?;
        fluid_settings.set_int(c"synth.polyphony", polyphony)?;
        fluid_settings.set_int(c"synth.cpu-cores", 1)?;
        fluid_settings.set_int(c"synth.reverb.active", 0)?;
        fluid_settings.set_int(c"synth.chorus.active", 0)?;
        // SAFETY: live settings, which outlive the synth (field order).
        let synth = unsafe { ffi::new_fluid_synth(fluid_settings.0.as_ptr()) };
        let mut engine = Self {
            synth: Synth(NonNull::new(synth).ok_or(FluidError::Synth)?),
            _settings: fluid_settings,
            piano_font: ffi::FLUID_FAILED,
            pad_font: ffi::FLUID_FAILED,
            _builtin_file: None,
        };
        engine.piano_font = engine.load(&fonts.piano)?;
        engine.pad_font = if Arc::ptr_eq(&fonts.piano.font, &fonts.pad.font) {
            engine.piano_font
        } else {
            engine.load(&fonts.pad)?
        };
        for channel in (0..MIDI_CHANNELS).filter(|&c| c != DRUM_CHANNEL) {
            engine.program_change(channel, 0);
        }
        Ok(engine)
    }

    /// Loads a font from its file; the built-in font, which lives only in
    /// memory, goes through a temporary file shared by every fluid engine
    /// alive (so fluid's sample cache, keyed by file name, shares it too).
    fn load(&mut self, font: &LoadedFont) -> Result<c_int, FluidError> {
        let path = match &font.info.path {
            Some(path) => path.clone(),
            None => {
                let file = TempFont::builtin()?;
                let path = file.path.clone();
                self._builtin_file = Some(file);
                path
            }
        };
        let font_load = || FluidError::FontLoad { path: path.clone() };
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| font_load())?;
        // SAFETY: live synth, NUL-terminated path; fluid copies the name.
        let id = unsafe { ffi::fluid_synth_sfload(self.synth.0.as_ptr(), c_path.as_ptr(), 0) };
        if id == ffi::FLUID_FAILED {
            return Err(font_load());
        }
        Ok(id)
    }

    fn font_for(&self, channel: u8) -> c_int {
        if channel == PIANO_CHANNEL {
            self.piano_font
        } else {
            self.pad_font
        }
    }
}

impl Settings {
    fn set_num(&mut self, name: &'static std::ffi::CStr, value: f64) -> Result<(), FluidError> {
        // SAFETY: live settings, NUL-terminated name.
        let rc = unsafe { ffi::fluid_settings_setnum(self.0.as_ptr(), name.as_ptr(), value) };
        setting_result(rc, name, value)
    }

    fn set_int(&mut self, name: &'static std::ffi::CStr, value: c_int) -> Result<(), FluidError> {
        // SAFETY: live settings, NUL-terminated name.
        let rc = unsafe { ffi::fluid_settings_setint(self.0.as_ptr(), name.as_ptr(), value) };
        setting_result(rc, name, f64::from(value))
    }
}

fn setting_result(rc: c_int, name: &'static std::ffi::CStr, value: f64) -> Result<(), FluidError> {
    if rc == ffi::FLUID_OK {
        Ok(())
    } else {
        Err(FluidError::Setting {
            name: name.to_str().unwrap_or("?"),
            value,
        })
    }
}

// The `c_int` results below are ignored on purpose: fluid fails a note-off for
// a key that is not sounding and a program the font lacks, and neither is an
// error for a stream (rustysynth ignores both too; fonts are checked for the
// composer's programs when they are resolved).
impl Engine for FluidEngine {
    fn name(&self) -> &'static str {
        "libfluidsynth"
    }

    fn program_change(&mut self, channel: u8, program: u8) {
        let font = self.font_for(channel);
        // SAFETY: live synth; fluid range-checks channel, font id and preset.
        unsafe {
            ffi::fluid_synth_program_select(
                self.synth.0.as_ptr(),
                c_int::from(channel),
                font,
                0,
                c_int::from(program),
            );
        }
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        // SAFETY: live synth; fluid range-checks its arguments.
        unsafe {
            ffi::fluid_synth_noteon(
                self.synth.0.as_ptr(),
                c_int::from(channel),
                c_int::from(key),
                c_int::from(velocity),
            );
        }
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        // SAFETY: live synth; fluid range-checks its arguments.
        unsafe {
            ffi::fluid_synth_noteoff(
                self.synth.0.as_ptr(),
                c_int::from(channel),
                c_int::from(key),
            );
        }
    }

    fn all_notes_off(&mut self) {
        // SAFETY: live synth; channel -1 means every channel.
        unsafe {
            ffi::fluid_synth_all_notes_off(self.synth.0.as_ptr(), -1);
        }
    }

    fn sound_off(&mut self) {
        // SAFETY: live synth; channel -1 means every channel.
        unsafe {
            ffi::fluid_synth_all_sounds_off(self.synth.0.as_ptr(), -1);
        }
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        debug_assert_eq!(left.len(), right.len());
        for (l, r) in left
            .chunks_mut(MAX_WRITE_FRAMES)
            .zip(right.chunks_mut(MAX_WRITE_FRAMES))
        {
            let frames = l.len().min(r.len());
            // SAFETY: live synth; both buffers hold at least `frames` f32s
            // (≤ MAX_WRITE_FRAMES, so the cast is exact) and fluid writes
            // exactly `frames` samples to each with a stride of 1.
            unsafe {
                ffi::fluid_synth_write_float(
                    self.synth.0.as_ptr(),
                    frames as c_int,
                    l.as_mut_ptr().cast(),
                    0,
                    1,
                    r.as_mut_ptr().cast(),
                    0,
                    1,
                );
            }
        }
    }
}

/// The built-in font written to a uniquely named temporary file, removed when
/// the last engine using it is dropped.
struct TempFont {
    path: PathBuf,
}

impl TempFont {
    fn builtin() -> Result<Arc<TempFont>, FluidError> {
        static SHARED: Mutex<Weak<TempFont>> = Mutex::new(Weak::new());
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = shared.upgrade() {
            return Ok(file);
        }
        let path = std::env::temp_dir().join(format!(
            "auralis-builtin-{}-{}.sf2",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        write_new(&path, &builtin_font::builtin_font_bytes()).map_err(|source| {
            FluidError::TempFont {
                path: path.clone(),
                source,
            }
        })?;
        let file = Arc::new(TempFont { path });
        *shared = Arc::downgrade(&file);
        Ok(file)
    }
}

/// `create_new` so that a stale file of the same name is never trusted.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)
}

impl Drop for TempFont {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
