//! Where SoundFonts come from: an explicit path (flag or environment), a system
//! font on the usual Debian paths, or the font Auralis builds itself. Each
//! channel group resolves on its own, and a file that fails to load is reported
//! and skipped so the server always starts with something that plays.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustysynth::SoundFont;
use serde::Serialize;

use super::builtin_font::{
    self, BUILTIN_FONT_ATTRIBUTION, BUILTIN_FONT_LICENCE, BUILTIN_FONT_NAME,
};

/// General MIDI fonts on the paths Debian and other distributions install them.
pub const SYSTEM_GM_PATHS: &[&str] = &[
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
];

/// General MIDI programs the composer selects; a font that lacks them would
/// play silence or the wrong instrument, so it is passed over.
const PIANO_PROGRAMS: &[u8] = &[0];
const PAD_PROGRAMS: &[u8] = &[88, 89];

#[derive(Debug, thiserror::Error)]
pub enum SoundFontError {
    #[error("cannot read SoundFont {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a SoundFont 2 file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("SoundFont {path} has no preset for General MIDI program {program} (bank 0), which the {role} channel needs")]
    MissingProgram {
        path: PathBuf,
        program: u8,
        role: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FontSource {
    /// A path given by flag or environment variable.
    Configured,
    /// Found on a well-known system path.
    System,
    /// Generated in memory by Auralis.
    BuiltIn,
}

/// What a listener or operator needs to know about a font: what it is, where
/// it came from, and the terms under which its sound may be used.
#[derive(Debug, Clone, Serialize)]
pub struct FontInfo {
    pub name: String,
    pub path: Option<PathBuf>,
    pub size_bytes: u64,
    pub source: FontSource,
    pub licence: String,
    pub attribution: String,
    pub presets: usize,
}

#[derive(Clone)]
pub struct LoadedFont {
    pub info: FontInfo,
    pub font: Arc<SoundFont>,
}

/// The fonts in use: channel 0 plays from `piano`, every other channel from
/// `pad`. Both may be the same `Arc`, loaded once.
#[derive(Clone)]
pub struct FontSet {
    pub piano: LoadedFont,
    pub pad: LoadedFont,
    /// Fonts that were asked for or found but could not be used, with why.
    pub problems: Vec<String>,
}

impl FontSet {
    /// Resolves both channel groups: explicit path, then (piano only) an
    /// installed Salamander font, then system GM fonts, then the built-in
    /// font. Never fails: every problem is recorded and logged.
    pub fn resolve(piano: Option<&Path>, pad: Option<&Path>) -> FontSet {
        let mut cache: Vec<LoadedFont> = Vec::new();
        let mut problems = Vec::new();
        // The brief's piano is Salamander; once built and installed it is
        // preferred over the GM fonts' piano. The pad stays on the GM fonts.
        let salamander = super::salamander::installed_paths();
        let piano = resolve_role(
            piano,
            &salamander,
            PIANO_PROGRAMS,
            "piano",
            &mut cache,
            &mut problems,
        );
        let pad = resolve_role(pad, &[], PAD_PROGRAMS, "pad", &mut cache, &mut problems);
        for p in &problems {
            tracing::warn!("{p}");
        }
        FontSet {
            piano,
            pad,
            problems,
        }
    }

    /// Only the built-in font, whatever is installed: for reproducible tests.
    pub fn builtin() -> FontSet {
        let font = load_builtin();
        FontSet {
            piano: font.clone(),
            pad: font,
            problems: Vec::new(),
        }
    }

    /// Distinct fonts in use, piano first.
    pub fn distinct(&self) -> Vec<&LoadedFont> {
        let mut v = vec![&self.piano];
        if !Arc::ptr_eq(&self.piano.font, &self.pad.font) {
            v.push(&self.pad);
        }
        v
    }
}

fn resolve_role(
    explicit: Option<&Path>,
    preferred: &[PathBuf],
    programs: &[u8],
    role: &'static str,
    cache: &mut Vec<LoadedFont>,
    problems: &mut Vec<String>,
) -> LoadedFont {
    let configured = explicit.map(|p| (p.to_path_buf(), FontSource::Configured));
    let system = preferred
        .iter()
        .cloned()
        .chain(SYSTEM_GM_PATHS.iter().map(PathBuf::from))
        .filter(|p| p.is_file())
        .map(|p| (p, FontSource::System));
    for (path, source) in configured.into_iter().chain(system) {
        if let Some(hit) = cache.iter().find(|f| f.info.path.as_deref() == Some(&path)) {
            if let Err(e) = check_programs(&hit.font, &path, programs, role) {
                problems.push(e.to_string());
                continue;
            }
            return hit.clone();
        }
        match load_file(&path, source)
            .and_then(|f| check_programs(&f.font, &path, programs, role).map(|()| f))
        {
            Ok(font) => {
                cache.push(font.clone());
                return font;
            }
            Err(e) => problems.push(format!(
                "{e}; the {role} channel falls back to the next source"
            )),
        }
    }
    if let Some(hit) = cache.iter().find(|f| f.info.source == FontSource::BuiltIn) {
        return hit.clone();
    }
    let font = load_builtin();
    cache.push(font.clone());
    font
}

fn check_programs(
    font: &SoundFont,
    path: &Path,
    programs: &[u8],
    role: &'static str,
) -> Result<(), SoundFontError> {
    for &program in programs {
        let present = font
            .get_presets()
            .iter()
            .any(|p| p.get_bank_number() == 0 && p.get_patch_number() == i32::from(program));
        if !present {
            return Err(SoundFontError::MissingProgram {
                path: path.to_path_buf(),
                program,
                role,
            });
        }
    }
    Ok(())
}

/// Loads an SF2 file, checking its RIFF framing first so that a truncated or
/// foreign file gets a clear message rather than whatever the parser trips on.
/// The file is parsed as it streams in, never held whole beside the parsed
/// font: a 148 MB font costs 148 MB, not twice that at startup.
pub fn load_file(path: &Path, source: FontSource) -> Result<LoadedFont, SoundFontError> {
    let io = |source: std::io::Error| SoundFontError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |reason: String| SoundFontError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut header = [0u8; 12];
    let got = read_up_to(&mut file, &mut header).map_err(io)?;
    check_riff(&header[..got], size).map_err(invalid)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let font = parse(&mut BufReader::new(file)).map_err(invalid)?;
    let (licence, attribution) = licence_for(path, &font);
    let info = FontInfo {
        name: font_name(&font, path),
        path: Some(path.to_path_buf()),
        size_bytes: size,
        source,
        licence,
        attribution,
        presets: font.get_presets().len(),
    };
    Ok(LoadedFont {
        info,
        font: Arc::new(font),
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn load_builtin() -> LoadedFont {
    let bytes = builtin_font::builtin_font_bytes();
    let font = parse(&mut Cursor::new(&bytes))
        .expect("the built-in font is generated by our own tested writer");
    LoadedFont {
        info: FontInfo {
            name: BUILTIN_FONT_NAME.to_string(),
            path: None,
            size_bytes: bytes.len() as u64,
            source: FontSource::BuiltIn,
            licence: BUILTIN_FONT_LICENCE.to_string(),
            attribution: BUILTIN_FONT_ATTRIBUTION.to_string(),
            presets: font.get_presets().len(),
        },
        font: Arc::new(font),
    }
}

fn check_riff(header: &[u8], file_size: u64) -> Result<(), String> {
    if header.len() < 12 || &header[0..4] != b"RIFF" || &header[8..12] != b"sfbk" {
        return Err("it does not start with a RIFF 'sfbk' header".into());
    }
    let declared = u64::from(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ])) + 8;
    if declared > file_size {
        return Err(format!(
            "it is truncated: the header declares {declared} bytes but the file has {file_size}"
        ));
    }
    Ok(())
}

/// rustysynth may panic on some malformed chunk layouts; a bad file on disk
/// must not take the process down, so a panic becomes an error.
fn parse(reader: &mut impl Read) -> Result<SoundFont, String> {
    let result = catch_unwind(AssertUnwindSafe(|| SoundFont::new(reader)));
    match result {
        Ok(Ok(font)) => Ok(font),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("its chunk structure is malformed".into()),
    }
}

fn font_name(font: &SoundFont, path: &Path) -> String {
    let bank = font.get_info().get_bank_name().trim();
    if bank.is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        bank.to_string()
    }
}

/// Licences of the fonts Auralis knows by name; anything else reports the
/// copyright line from its own INFO chunk.
fn licence_for(path: &Path, font: &SoundFont) -> (String, String) {
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if file.contains("fluidr3") {
        (
            "MIT".into(),
            "FluidR3_GM by Frank Wen and contributors (MIT licence, as packaged by Debian's fluid-soundfont-gm)".into(),
        )
    } else if file.contains("salamander") {
        (
            "CC-BY 3.0".into(),
            "Salamander Grand Piano by Alexander Holm, CC-BY 3.0".into(),
        )
    } else if file.contains("timgm6mb") {
        (
            "GPL-2.0".into(),
            "TimGM6mb by Tim Brechbill (GPL-2.0)".into(),
        )
    } else {
        let copyright = font.get_info().get_copyright().trim();
        (
            "unknown (see the file's own notice)".into(),
            if copyright.is_empty() {
                "no copyright notice in the file".into()
            } else {
                copyright.to_string()
            },
        )
    }
}
