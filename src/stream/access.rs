//! Who may do what: the keys that guard a shared room's controls, and the
//! per-address counts that stop one client from taking every session or
//! connection.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rand::RngCore;

/// A room's control key: 128 random bits, shown as 32 hex digits. Its Debug
/// is redacted so that a key cannot reach a log through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey([u8; 16]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomKeyError {
    #[error("a room key is 32 hex digits (128 bits, e.g. from `openssl rand -hex 16`), got {0} characters")]
    Length(usize),
    #[error("a room key is 32 hex digits (0-9, a-f); it holds another character")]
    NotHex,
    #[error("room keys line {line}: expected ROOM=KEY, got no \"=\"")]
    Line { line: usize },
    #[error("room keys line {line} (room {room:?}): {error}")]
    Key {
        line: usize,
        room: String,
        error: Box<RoomKeyError>,
    },
}

impl RoomKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn parse(text: &str) -> Result<Self, RoomKeyError> {
        let text = text.trim();
        if text.len() != 32 {
            return Err(RoomKeyError::Length(text.chars().count()));
        }
        let mut bytes = [0; 16];
        for (b, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| RoomKeyError::NotHex)?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| RoomKeyError::NotHex)?;
        }
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `offered` is this key, in time that does not depend on how
    /// many leading bytes match, so a guesser learns nothing from timing.
    pub fn matches(&self, offered: &str) -> bool {
        let Ok(other) = Self::parse(offered) else {
            return false;
        };
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKey(<redacted>)")
    }
}

/// Reads `ROOM=KEY` pairs, one per line or comma-separated (the form
/// `AURALIS_ROOM_KEYS` takes); blank lines and `#` comments are skipped.
pub fn parse_room_keys(text: &str) -> Result<HashMap<String, RoomKey>, RoomKeyError> {
    let mut keys = HashMap::new();
    let entries = text
        .lines()
        .enumerate()
        .flat_map(|(i, l)| l.split(',').map(move |e| (i + 1, e.trim())));
    for (line, entry) in entries {
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let (room, key) = entry.split_once('=').ok_or(RoomKeyError::Line { line })?;
        let room = room.trim().to_string();
        let key = RoomKey::parse(key).map_err(|e| RoomKeyError::Key {
            line,
            room: room.clone(),
            error: Box::new(e),
        })?;
        keys.insert(room, key);
    }
    Ok(keys)
}

/// Who may change a session's music over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomControl {
    /// Anyone listening: a listener's own session, or any room under
    /// `--open-rooms`.
    Anyone,
    /// Whoever presents this key.
    Key(RoomKey),
    /// Nobody: a room the server started for which no key is configured.
    Nobody,
}

impl RoomControl {
    pub fn permits(&self, offered: Option<&str>) -> bool {
        match self {
            RoomControl::Anyone => true,
            RoomControl::Key(key) => offered.is_some_and(|o| key.matches(o)),
            RoomControl::Nobody => false,
        }
    }
}

/// How rooms are guarded and how many sessions one address may start.
#[derive(Debug, Clone)]
pub struct Access {
    /// `--open-rooms`: anyone in a room may control it (rooms with a
    /// configured key excepted).
    pub open_rooms: bool,
    /// Keys from configuration, by room name; such a room is controlled
    /// only with its configured key, whoever started it.
    pub room_keys: Arc<HashMap<String, RoomKey>>,
    /// Rooms the server runs itself (pushed to Icecast): controlled only
    /// with a configured key, even under `open_rooms`, and never with a key
    /// made for whichever client happened to create the room first.
    pub server_rooms: Arc<HashSet<String>>,
    /// Sessions (own sessions and rooms) one client address may have
    /// running at once.
    pub max_sessions_per_ip: usize,
}

pub const DEFAULT_MAX_SESSIONS_PER_IP: usize = 4;

impl Default for Access {
    fn default() -> Self {
        Self {
            open_rooms: false,
            room_keys: Arc::default(),
            server_rooms: Arc::default(),
            max_sessions_per_ip: DEFAULT_MAX_SESSIONS_PER_IP,
        }
    }
}

impl Access {
    /// The control of a new room that a client starts, and whether that
    /// client is told the key (only a key made for it).
    pub fn for_client_room(&self, room: &str) -> (RoomControl, bool) {
        if self.server_rooms.contains(room) {
            return (self.for_server_room(room), false);
        }
        match self.room_keys.get(room) {
            Some(key) => (RoomControl::Key(key.clone()), false),
            None if self.open_rooms => (RoomControl::Anyone, false),
            None => (RoomControl::Key(RoomKey::generate()), true),
        }
    }

    /// The control of a room the server starts itself (e.g. for Icecast).
    pub fn for_server_room(&self, room: &str) -> RoomControl {
        match self.room_keys.get(room) {
            Some(key) => RoomControl::Key(key.clone()),
            None => RoomControl::Nobody,
        }
    }
}

/// Counts of something (sessions, connections) per client address, each
/// held by a [`PerIpSlot`]. An address's entry goes when its count reaches
/// zero, so the map holds only addresses with something open.
#[derive(Debug)]
pub struct PerIp {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted thing; dropping it gives the place back.
#[derive(Debug)]
pub struct PerIpSlot {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            counts: Mutex::new(HashMap::new()),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `ip`, or None when it already holds `limit`.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(PerIpSlot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Addresses with something open (the size of the bookkeeping).
    pub fn addresses(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = counts.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_compare() {
        let k = RoomKey::generate();
        let hex = k.to_hex();
        assert_eq!(hex.len(), 32);
        assert!(k.matches(&hex));
        assert!(k.matches(&hex.to_uppercase()), "hex is case-blind");
        assert!(!RoomKey::generate().matches(&hex), "two keys differ");
        let mut near = hex.clone().into_bytes();
        near[31] = if near[31] == b'0' { b'1' } else { b'0' };
        assert!(!k.matches(std::str::from_utf8(&near).unwrap()));
        for bad in ["", "abc", &hex[..31], &format!("{hex}0"), "zz"] {
            assert!(!k.matches(bad), "{bad}");
        }
        assert_eq!(format!("{k:?}"), "RoomKey(<redacted>)");
    }

    #[test]
    fn configured_keys_parse_and_bad_ones_are_named() {
        let a = "0123456789abcdef0123456789abcdef";
        let keys = parse_room_keys(&format!("# radio\nlobby={a}\n\n radio = {a} ,x={a}")).unwrap();
        assert_eq!(keys.len(), 3);
        assert!(keys["radio"].matches(a));
        let e = parse_room_keys("lobby").unwrap_err().to_string();
        assert!(e.contains("ROOM=KEY"), "{e}");
        let e = parse_room_keys("ok=\nlobby=1234").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("32 hex digits"), "{e}");
        let e = parse_room_keys(&format!("a={}", "g".repeat(32)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("0-9, a-f"), "{e}");
    }

    #[test]
    fn rooms_get_their_control_from_the_configuration() {
        let key = RoomKey::generate();
        let mut access = Access {
            room_keys: Arc::new(HashMap::from([("radio".to_string(), key.clone())])),
            ..Default::default()
        };
        assert_eq!(
            access.for_client_room("radio"),
            (RoomControl::Key(key.clone()), false)
        );
        let (control, told) = access.for_client_room("mine");
        assert!(told && matches!(control, RoomControl::Key(_)));
        assert_eq!(access.for_server_room("radio"), RoomControl::Key(key));
        assert_eq!(access.for_server_room("other"), RoomControl::Nobody);
        access.open_rooms = true;
        assert_eq!(access.for_client_room("mine"), (RoomControl::Anyone, false));
        assert!(RoomControl::Anyone.permits(None));
        assert!(!RoomControl::Nobody.permits(Some("anything")));
    }

    #[test]
    fn a_room_the_server_pushes_is_never_open_and_never_keyed_by_a_client() {
        let key = RoomKey::generate();
        let access = Access {
            open_rooms: true,
            room_keys: Arc::new(HashMap::from([("radio".to_string(), key.clone())])),
            server_rooms: Arc::new(HashSet::from(["focus".to_string(), "radio".to_string()])),
            ..Default::default()
        };
        // A client that gets there first neither opens it nor is told a key.
        assert_eq!(
            access.for_client_room("focus"),
            (RoomControl::Nobody, false)
        );
        assert_eq!(
            access.for_client_room("radio"),
            (RoomControl::Key(key), false)
        );
        assert_eq!(
            access.for_client_room("lobby"),
            (RoomControl::Anyone, false)
        );
    }

    #[test]
    fn per_ip_counts_are_capped_and_forgotten_at_zero() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = per_ip.try_acquire(a).unwrap();
        let two = per_ip
            .try_acquire(mapped)
            .expect("the same address, v4-mapped");
        assert!(per_ip.try_acquire(a).is_none(), "over the limit");
        let other = per_ip
            .try_acquire(b)
            .expect("another address has its own count");
        assert_eq!(per_ip.addresses(), 2);
        drop((one, two, other));
        assert_eq!(per_ip.addresses(), 0, "no entry stays at zero");
        assert!(PerIp::new(0).try_acquire(a).is_none());
    }
}
