//! Messages a client may send on /ws/stream, parsed strictly: anything
//! unexpected becomes a [`ProtocolError`] whose message says what was wrong and
//! what is allowed, and the stream goes on.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::music::change::{ParamChange, RawValue};
use crate::music::params::control_names;
use crate::wire::{ErrorCode, ServerMessage};

/// Largest client message accepted; controls are a few hundred bytes. The
/// connection loop closes with 1009 above it, before anything is parsed.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `key`: a shared room's control key, which its controls must carry.
    /// `playing`: the chunk the listener hears now, so the change can be
    /// spliced into what it has buffered.
    Control {
        change: ParamChange,
        key: Option<String>,
        playing: Option<u64>,
    },
    Ping {
        t: f64,
    },
    Stats(ClientStats),
    /// End the stream after this many seconds, fading out (the page's
    /// timer); `None` (JSON null) cancels it.
    Timer {
        seconds: Option<f64>,
    },
}

/// What the browser player reports about its own playback.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientStats {
    pub buffer_ms: Option<f64>,
    pub underruns: Option<u64>,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub control_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        ServerMessage::Error {
            code: self.code,
            message: &self.message,
        }
        .to_json()
    }
}

const TYPES: &str = "control, ping, stats, timer";

pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidJson, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("expected a JSON object with a \"type\" field ({TYPES})"),
        ));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!("\"type\" must be a string ({TYPES}), got {other}"),
            ))
        }
        None => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!("missing \"type\" field: expected one of {TYPES}"),
            ))
        }
    };
    match kind {
        "control" => parse_control(&obj),
        "ping" => {
            only_fields(&obj, &["type", "t"])?;
            let t = match obj.get("t") {
                None => 0.0,
                Some(v) => finite(
                    v,
                    "t",
                    "a number (the client's clock, e.g. performance.now())",
                )?,
            };
            Ok(ClientMessage::Ping { t })
        }
        "stats" => parse_stats(&obj).map(ClientMessage::Stats),
        "timer" => {
            only_fields(&obj, &["type", "seconds"])?;
            let seconds = match obj.get("seconds") {
                None => {
                    return Err(ProtocolError::new(
                        ErrorCode::InvalidParams,
                        "a timer message needs \"seconds\": how long until the music ends, or null to cancel",
                    ))
                }
                Some(Value::Null) => None,
                Some(v) => Some(finite(v, "seconds", "a number of seconds, or null")?),
            };
            Ok(ClientMessage::Timer { seconds })
        }
        other => Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type \"{}\": expected one of {TYPES}",
                truncate(other)
            ),
        )),
    }
}

fn parse_control(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    only_fields(obj, &["type", "params", "key", "playing_seq"])?;
    let playing = match obj.get("playing_seq") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!(
                    "\"playing_seq\" must be the seq of the chunk being heard, a whole number from 0, got {}",
                    truncate(&v.to_string())
                ),
            )
        })?),
    };
    let key = match obj.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(other) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!(
                    "\"key\" must be a string (the room's control_key from hello), got {}",
                    truncate(&other.to_string())
                ),
            ))
        }
    };
    let params = match obj.get("params") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidParams,
                format!(
                    "a control message needs \"params\": an object with any of {}",
                    control_names()
                ),
            ))
        }
    };
    let invalid = |m: String| ProtocolError::new(ErrorCode::InvalidParams, m);
    let mut change = ParamChange::default();
    for (name, v) in params {
        change
            .set(name, RawValue::Json(v))
            .map_err(|e| invalid(e.to_string()))?;
    }
    if change.is_empty() {
        return Err(invalid(format!(
            "\"params\" is empty: give any of {}",
            control_names()
        )));
    }
    Ok(ClientMessage::Control {
        change,
        key,
        playing,
    })
}

fn parse_stats(obj: &Map<String, Value>) -> Result<ClientStats, ProtocolError> {
    only_fields(
        obj,
        &[
            "type",
            "buffer_ms",
            "underruns",
            "latency_ms",
            "jitter_ms",
            "control_latency_ms",
        ],
    )?;
    let num = |name: &str| -> Result<Option<f64>, ProtocolError> {
        obj.get(name)
            .filter(|v| !v.is_null())
            .map(|v| finite(v, name, "a non-negative number"))
            .transpose()
    };
    let underruns = match obj.get("underruns").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::InvalidStats,
                format!("underruns must be a non-negative whole number, got {v}"),
            )
        })?),
    };
    Ok(ClientStats {
        buffer_ms: num("buffer_ms")?,
        underruns,
        latency_ms: num("latency_ms")?,
        jitter_ms: num("jitter_ms")?,
        control_latency_ms: num("control_latency_ms")?,
    })
}

fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ProtocolError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!(
                "unexpected field \"{}\" in a \"{}\" message: allowed are {}",
                truncate(k),
                obj.get("type").and_then(Value::as_str).unwrap_or("?"),
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn finite(v: &Value, name: &str, expected: &str) -> Result<f64, ProtocolError> {
    v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::InvalidParams,
            format!("{name} must be {expected}, got {v}"),
        )
    })
}

/// Echoing a client's string back is useful, echoing a megabyte is not.
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_ping_and_stats_parse() {
        let m =
            parse(r#"{"type":"control","params":{"bpm":72,"key":"F","preset":"calm"}}"#).unwrap();
        let ClientMessage::Control {
            change: c,
            key: None,
            playing: None,
        } = m
        else {
            panic!("not a control without a key: {m:?}")
        };
        assert_eq!(c.bpm, Some(72.0));
        assert_eq!(c.key.as_deref(), Some("F"));
        assert_eq!(c.preset.as_deref(), Some("calm"));
        assert_eq!(
            parse(r#"{"type":"ping","t":12.5}"#).unwrap(),
            ClientMessage::Ping { t: 12.5 }
        );
        let m =
            parse(r#"{"type":"stats","buffer_ms":300,"underruns":2,"latency_ms":410.5}"#).unwrap();
        let ClientMessage::Stats(s) = m else {
            panic!("not stats")
        };
        assert_eq!(s.underruns, Some(2));
        assert_eq!(s.latency_ms, Some(410.5));
        assert_eq!(
            parse(r#"{"type":"timer","seconds":900}"#).unwrap(),
            ClientMessage::Timer {
                seconds: Some(900.0)
            }
        );
        assert_eq!(
            parse(r#"{"type":"timer","seconds":null}"#).unwrap(),
            ClientMessage::Timer { seconds: None }
        );
    }

    #[test]
    fn bad_input_gets_a_code_and_a_useful_message() {
        let cases = [
            ("not json", ErrorCode::InvalidJson, "JSON"),
            ("[1,2]", ErrorCode::InvalidMessage, "object"),
            (r#"{"t":1}"#, ErrorCode::InvalidMessage, "type"),
            (r#"{"type":7}"#, ErrorCode::InvalidMessage, "string"),
            (
                r#"{"type":"dance"}"#,
                ErrorCode::UnknownType,
                "control, ping, stats, timer",
            ),
            (r#"{"type":"timer"}"#, ErrorCode::InvalidParams, "seconds"),
            (
                r#"{"type":"timer","seconds":"soon"}"#,
                ErrorCode::InvalidParams,
                "seconds must be",
            ),
            (r#"{"type":"control"}"#, ErrorCode::InvalidParams, "params"),
            (
                r#"{"type":"control","params":{}}"#,
                ErrorCode::InvalidParams,
                "empty",
            ),
            (
                r#"{"type":"control","params":{"bpm":"fast"}}"#,
                ErrorCode::InvalidParams,
                "40 to 120",
            ),
            (
                r#"{"type":"control","params":{"tempo":60}}"#,
                ErrorCode::InvalidParams,
                "allowed",
            ),
            (
                r#"{"type":"control","params":{"seed":-1}}"#,
                ErrorCode::InvalidParams,
                "seed",
            ),
            (
                r#"{"type":"ping","t":"x"}"#,
                ErrorCode::InvalidParams,
                "t must be",
            ),
            (
                r#"{"type":"control","params":{"bpm":70},"key":7}"#,
                ErrorCode::InvalidMessage,
                "control_key",
            ),
            (
                r#"{"type":"ping","extra":1}"#,
                ErrorCode::InvalidMessage,
                "extra",
            ),
            (
                r#"{"type":"stats","underruns":-3}"#,
                ErrorCode::InvalidStats,
                "underruns",
            ),
        ];
        for (input, code, needle) in cases {
            let e = parse(input).unwrap_err();
            assert_eq!(e.code, code, "{input}: {e:?}");
            assert!(e.message.contains(needle), "{input}: {}", e.message);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_control_values(
            bpm in proptest::num::f64::ANY,
            intensity in proptest::num::f64::ANY,
            key in ".{0,8}",
            seed in any::<i64>(),
        ) {
            let msg = serde_json::json!({"type":"control","params":{
                "bpm": bpm, "intensity": intensity, "key": key, "seed": seed}});
            if let Ok(ClientMessage::Control { change: c, .. }) = parse(&msg.to_string()) {
                let _ = c.apply_to(&crate::music::Params::default());
            }
        }
    }
}
