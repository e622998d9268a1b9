//! The query string of /ws/stream: output format, starting parameters, room.

use std::collections::HashMap;

use crate::music::change::{ChangeError, FieldError, ParamChange, RawValue};
use crate::music::params::{control, control_names};
use crate::music::Params;
use crate::stream::Resume;
use crate::wire::WireFormat;

#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    pub format: WireFormat,
    pub room: Option<String>,
    pub params: Params,
    pub preset: Option<String>,
    pub resume: Option<Resume>,
}

const MAX_ROOM_LEN: usize = 64;
const MAX_TOKEN_LEN: usize = 64;
/// A resumed piece starts at most a day in: the composer is run forward to
/// the position (about 2 × 10⁵ eighth notes for a day at 120 BPM), so the
/// position is bounded.
const MAX_FROM: u64 = 24 * 3600 * 10;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("unknown query parameter \"{0}\": allowed are format, {names}, room, resume, from", names = control_names())]
    Unknown(String),
    #[error("format must be \"binary\" or \"json\", got \"{0}\"")]
    Format(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(
        "room must be 1–{MAX_ROOM_LEN} characters of letters, digits, '-', '_' or '.', got \"{0}\""
    )]
    Room(String),
    #[error(transparent)]
    Params(#[from] ChangeError),
    #[error(
        "resume must be 1–{MAX_TOKEN_LEN} hexadecimal digits (the token from `hello`), got \"{0}\""
    )]
    Token(String),
    #[error("from must be a chunk number from 0 to {MAX_FROM}, got \"{0}\"")]
    From(String),
    #[error("resume and from go together: the token from `hello` and the next chunk wanted")]
    ResumeHalf,
}

impl StreamRequest {
    /// Without a preset the `focus` preset applies, then any explicit values.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, QueryError> {
        let mut format = WireFormat::Binary;
        let mut room = None;
        let mut token = None;
        let mut from = None;
        let mut change = ParamChange::default();
        for (name, value) in query {
            match name.as_str() {
                "format" => {
                    format = match value.as_str() {
                        "binary" => WireFormat::Binary,
                        "json" => WireFormat::Json,
                        other => return Err(QueryError::Format(clip(other))),
                    }
                }
                "room" => {
                    let ok = !value.is_empty()
                        && value.len() <= MAX_ROOM_LEN
                        && value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !ok {
                        return Err(QueryError::Room(clip(value)));
                    }
                    room = Some(value.clone());
                }
                "resume" => {
                    let ok = !value.is_empty()
                        && value.len() <= MAX_TOKEN_LEN
                        && value.chars().all(|c| c.is_ascii_hexdigit());
                    if !ok {
                        return Err(QueryError::Token(clip(value)));
                    }
                    token = Some(value.clone());
                }
                "from" => {
                    let n = value.parse::<u64>().ok().filter(|n| *n <= MAX_FROM);
                    from = Some(n.ok_or_else(|| QueryError::From(clip(value)))?);
                }
                other if control(other).is_some() => change.set(other, RawValue::Text(value))?,
                other => return Err(QueryError::Unknown(clip(other))),
            }
        }
        let (params, preset) = change.resolve()?;
        let resume = match (token, from) {
            (Some(token), Some(from)) => Some(Resume { token, from }),
            (None, None) => None,
            _ => return Err(QueryError::ResumeHalf),
        };
        Ok(Self {
            format,
            room,
            params,
            preset: preset.map(|p| p.name.to_string()),
            resume,
        })
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A query map from pairs, for the tests of every handler that parses one.
    pub(crate) fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_to_binary_focus() {
        let r = StreamRequest::parse(&q(&[])).unwrap();
        assert_eq!(r.format, WireFormat::Binary);
        assert_eq!(r.preset.as_deref(), Some("focus"));
        assert_eq!(r.room, None);
    }

    #[test]
    fn reads_every_parameter() {
        let r = StreamRequest::parse(&q(&[
            ("format", "json"),
            ("preset", "calm"),
            ("key", "F#"),
            ("mode", "lydian"),
            ("bpm", "80"),
            ("intensity", "0.25"),
            ("seed", "42"),
            ("room", "lobby-1"),
        ]))
        .unwrap();
        assert_eq!(r.format, WireFormat::Json);
        assert_eq!(r.room.as_deref(), Some("lobby-1"));
        assert_eq!(r.params.bpm, 80.0);
        assert_eq!(r.params.seed, 42);
        assert_eq!(r.params.key.to_string(), "F#");
    }

    #[test]
    fn rejects_with_what_is_allowed() {
        for (pairs, needle) in [
            (vec![("volume", "3")], "allowed are"),
            (vec![("format", "mp3")], "binary"),
            (vec![("bpm", "fast")], "number"),
            (vec![("bpm", "500")], "40"),
            (vec![("seed", "-1")], "whole number"),
            (vec![("room", "a b")], "letters"),
            (vec![("preset", "disco")], "focus"),
            (vec![("resume", "zz"), ("from", "1")], "hexadecimal"),
            (vec![("resume", "ab"), ("from", "-1")], "chunk number"),
            (vec![("resume", "ab"), ("from", "864001")], "chunk number"),
            (vec![("resume", "ab")], "go together"),
        ] {
            let e = StreamRequest::parse(&q(&pairs)).unwrap_err().to_string();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn a_resume_carries_its_token_and_position() {
        let r = StreamRequest::parse(&q(&[("resume", "00ff"), ("from", "1234"), ("seed", "7")]))
            .unwrap();
        assert_eq!(
            r.resume,
            Some(Resume {
                token: "00ff".into(),
                from: 1234
            })
        );
        assert_eq!(r.params.seed, 7);
        assert_eq!(StreamRequest::parse(&q(&[])).unwrap().resume, None);
    }
}
