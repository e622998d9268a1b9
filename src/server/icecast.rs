//! Rooms pushed to Icecast 2 as sources (`serve --icecast ROOM=URL`), so a
//! room rendered once here reaches any number of listeners through Icecast
//! and its relays.
//!
//! The pusher is an ordinary listener of its room: it joins through the hub,
//! takes the room's Opus lane like an HTTP listener, and so the room renders
//! and encodes once for Icecast, /listen.opus and WebSocket listeners alike,
//! and the room's controls steer what Icecast plays.
//!
//! The source protocol is Icecast's own (src/connection.c, libshout's
//! src/proto_http.c): `PUT /mount` with Basic auth, `Content-Type:
//! audio/ogg`, `Expect: 100-continue`, then the body written raw on the
//! socket. Icecast 2.4 cannot read a chunked upload, which is why this is a
//! plain TCP connection and not an HTTP client library's streaming body.
//! Every connection starts a fresh Ogg stream with OpusHead and OpusTags,
//! since Icecast hands those to each of its listeners.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::query::StreamRequest;
use crate::audio::opus::DEFAULT_KBPS;
use crate::music::presets::preset;
use crate::stream::lanes::LaneUse;
use crate::stream::metrics::PushStatus;
use crate::stream::session::Outgoing;
use crate::stream::{Hub, Listener};

/// The Opus bitrate of every pushed room, /listen.opus's default, so a
/// browser on the same room shares the lane.
pub const PUSH_KBPS: u32 = DEFAULT_KBPS;
/// Icecast answers within milliseconds; a server that does not within this
/// is treated as down and retried.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(4);
/// Pages waiting for the socket (3 s of audio). More means Icecast is not
/// reading: the connection is dropped and made again rather than letting
/// the room's own queue fill, which would end the room's session.
const SOCKET_QUEUE: usize = 30;
/// First wait before reconnecting, and the most: after a restart Icecast is
/// back within a second or two, and a source that stays away longer than
/// the cap loses little by waiting for it.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A connection that lasted this long was healthy: the next failure starts
/// the backoff from the beginning again.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// How long a closing pusher waits for its last pages (the fade) to leave.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// One `--icecast ROOM=URL`: which room goes where.
#[derive(Clone, PartialEq, Eq)]
pub struct IcecastTarget {
    pub room: String,
    pub host: String,
    pub port: u16,
    pub mount: String,
    pub user: String,
    password: Option<String>,
}

/// Shown in logs and /api/status: never the password.
impl std::fmt::Display for IcecastTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "http://{}@{host}:{}{}", self.user, self.port, self.mount)
    }
}

impl std::fmt::Debug for IcecastTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={self}", self.room)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "--icecast takes ROOM=URL, e.g. focus=http://source@127.0.0.1:8000/focus.opus; got \"{0}\""
    )]
    Syntax(String),
    #[error("{0}")]
    Room(String),
    #[error("the Icecast URL must start with http:// (Icecast sources speak plain HTTP here; put TLS in front of Icecast), got \"{0}\"")]
    Scheme(String),
    #[error("the Icecast URL has no host: \"{0}\"")]
    Host(String),
    #[error("the Icecast port must be a number from 1 to 65535, got \"{0}\"")]
    Port(String),
    #[error("the Icecast mount must be a path like /focus.opus of letters, digits, '-', '_', '.' and '/', got \"{0}\"")]
    Mount(String),
    #[error("no Icecast source password for room \"{0}\": set AURALIS_ICECAST_PASSWORD or --icecast-password-file")]
    NoPassword(String),
}

impl FromStr for IcecastTarget {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let clip = |v: &str| v.chars().take(80).collect::<String>();
        let (room, url) = s
            .split_once('=')
            .ok_or_else(|| TargetError::Syntax(clip(s)))?;
        // The room name follows /ws/stream's rules, checked in one place.
        StreamRequest::parse(&[("room".to_string(), room.to_string())].into())
            .map_err(|e| TargetError::Room(e.to_string()))?;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| TargetError::Scheme(redact(url)))?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (user.to_string(), Some(pass.to_string())),
                None => (u.to_string(), None),
            },
            None => ("source".to_string(), None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| TargetError::Host(redact(url)))?;
            (h, p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(TargetError::Host(redact(url)));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| TargetError::Port(clip(p)))?,
            None => 80,
        };
        let mount_ok = path.len() > 1
            && path.len() <= 256
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if !mount_ok {
            return Err(TargetError::Mount(clip(path)));
        }
        Ok(Self {
            room: room.to_string(),
            host: host.to_string(),
            port,
            mount: path.to_string(),
            user,
            password,
        })
    }
}

/// The URL as it may be shown: the password, if any, replaced.
fn redact(url: &str) -> String {
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    shown.chars().take(120).collect()
}

impl IcecastTarget {
    /// Fills in the password from the environment or a file unless the URL
    /// carried one; a target without any is refused at start.
    pub fn with_password(mut self, password: Option<&str>) -> Result<Self, TargetError> {
        if self.password.is_none() {
            self.password = password.map(str::to_string);
        }
        if self.password.is_none() {
            return Err(TargetError::NoPassword(self.room));
        }
        Ok(self)
    }

    /// The source request's head, as libshout sends it for PUT.
    fn request(&self, description: &str) -> String {
        let credentials = format!(
            "{}:{}",
            self.user,
            self.password.as_deref().unwrap_or_default()
        );
        let auth = base64::engine::general_purpose::STANDARD.encode(credentials);
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "PUT {mount} HTTP/1.1\r\n\
             Host: {host}:{port}\r\n\
             Authorization: Basic {auth}\r\n\
             User-Agent: auralis/{version}\r\n\
             Content-Type: audio/ogg\r\n\
             Expect: 100-continue\r\n\
             ice-public: 0\r\n\
             ice-name: Auralis {room}\r\n\
             ice-description: {description}\r\n\
             ice-genre: Ambient\r\n\
             ice-audio-info: channels=2;samplerate=48000;bitrate={PUSH_KBPS}\r\n\
             \r\n",
            mount = self.mount,
            port = self.port,
            version = env!("CARGO_PKG_VERSION"),
            room = self.room,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot reach Icecast: {0}")]
    Connect(std::io::Error),
    #[error("Icecast did not answer within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    #[error("Icecast refused the source password (401)")]
    Unauthorized,
    #[error("Icecast refused the source: {0}")]
    Refused(String),
    #[error("Icecast closed the connection")]
    Closed,
    #[error("Icecast stopped reading: {SOCKET_QUEUE} pages waited for the socket")]
    Stalled,
    #[error("writing to Icecast failed: {0}")]
    Write(std::io::Error),
}

/// Starts one pusher per target; each runs until `hub.shutdown`.
pub fn spawn(hub: &Arc<Hub>, targets: &[IcecastTarget]) {
    for target in targets {
        let status = Arc::new(PushStatus {
            room: target.room.clone(),
            target: target.to_string(),
            ..Default::default()
        });
        hub.metrics.add_push(Arc::clone(&status));
        let pusher = Pusher {
            hub: Arc::clone(hub),
            target: Arc::new(target.clone()),
            status,
            backoff: Backoff::default(),
        };
        tokio::spawn(pusher.run());
    }
}

struct Pusher {
    hub: Arc<Hub>,
    target: Arc<IcecastTarget>,
    status: Arc<PushStatus>,
    backoff: Backoff,
}

/// A connection's sending end, as the room loop sees it.
struct Connection {
    pages: mpsc::Sender<Bytes>,
    /// Chunks before this were in the connection's backlog or predate it.
    first_seq: u64,
    started: Instant,
    /// Keeps the room encoding Opus at [`PUSH_KBPS`].
    _lane: Arc<LaneUse>,
}

impl Pusher {
    async fn run(mut self) {
        let room = self.target.room.clone();
        // The room's preset is the one named like it, else focus.
        let preset_name = preset(&room).map_or("focus", |p| p.name);
        let query = [
            ("room".to_string(), room.clone()),
            ("preset".to_string(), preset_name.to_string()),
        ]
        .into();
        let request = match StreamRequest::parse(&query) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(room, error = %e, "cannot push this room to Icecast");
                return;
            }
        };
        while !self.hub.shutdown.is_cancelled() {
            let joined = self
                .hub
                .join(
                    request.room.clone(),
                    request.params.clone(),
                    request.preset.clone(),
                )
                .await;
            match joined {
                Ok(listener) => self.in_room(listener).await,
                Err(e) => {
                    tracing::warn!(room, error = %e, "cannot open the room pushed to Icecast");
                    let wait = self.backoff.next();
                    tokio::select! {
                        () = self.hub.shutdown.cancelled() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Pushes the room while this listener is in it: connects, forwards
    /// every chunk's Opus page, and reconnects with backoff when Icecast
    /// goes away. The room's queue is read all the while, connected or not,
    /// so an absent Icecast never makes the pusher a stalled listener.
    async fn in_room(&mut self, mut listener: Listener) {
        let mut conn: Option<Connection> = None;
        let mut task: Option<JoinHandle<Result<(), PushError>>> = None;
        let mut retry_at = Instant::now();
        loop {
            tokio::select! {
                biased;
                reason = &mut listener.kicked => {
                    // The session's last chunks (its fade at shutdown) are
                    // still queued: send them before closing.
                    if let Some(c) = &conn {
                        while let Ok(Outgoing::Chunk(chunk)) = listener.queue.try_recv() {
                            if let Some(page) = chunk.opus_page(PUSH_KBPS) {
                                let _ = c.pages.try_send(page.clone());
                            }
                        }
                    }
                    drop(conn);
                    if let Some(t) = task {
                        let _ = tokio::time::timeout(FLUSH_TIMEOUT, t).await;
                    }
                    self.status.connected.store(false, Ordering::Relaxed);
                    tracing::info!(room = %self.target.room, ?reason, "left the room pushed to Icecast");
                    break;
                }
                ended = async { task.as_mut().expect("guarded").await }, if task.is_some() => {
                    let error = match ended {
                        Ok(Ok(())) => PushError::Closed,
                        Ok(Err(e)) => e,
                        Err(e) => PushError::Refused(format!("pusher task failed: {e}")),
                    };
                    let lasted = conn.take().map(|c| c.started.elapsed());
                    task = None;
                    retry_at = Instant::now() + self.lost(&error, lasted);
                }
                () = tokio::time::sleep_until(retry_at), if task.is_none() => {
                    match listener.session.opus(PUSH_KBPS).await {
                        Ok(Ok(sub)) => {
                            let mut prelude = BytesMut::from(&sub.header[..]);
                            for page in &sub.backlog {
                                prelude.extend_from_slice(page);
                            }
                            let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
                            task = Some(tokio::spawn(push(
                                Arc::clone(&self.target),
                                Arc::clone(&self.status),
                                prelude.freeze(),
                                rx,
                            )));
                            conn = Some(Connection {
                                pages: tx,
                                first_seq: sub.first_seq,
                                started: Instant::now(),
                                _lane: sub.lane,
                            });
                        }
                        Ok(Err(e)) => {
                            tracing::error!(room = %self.target.room, error = %e, "the room cannot encode Opus for Icecast");
                            retry_at = Instant::now() + self.backoff.next();
                        }
                        Err(_) => break,
                    }
                }
                out = listener.queue.recv() => {
                    let Some(out) = out else { break };
                    let (Outgoing::Chunk(chunk), Some(c)) = (out, &conn) else { continue };
                    if chunk.seq < c.first_seq {
                        continue;
                    }
                    let Some(page) = chunk.opus_page(PUSH_KBPS) else { continue };
                    if let Err(mpsc::error::TrySendError::Full(_)) = c.pages.try_send(page.clone()) {
                        if let Some(t) = task.take() {
                            t.abort();
                        }
                        let lasted = conn.take().map(|c| c.started.elapsed());
                        retry_at = Instant::now() + self.lost(&PushError::Stalled, lasted);
                    }
                }
            }
        }
        listener.leave().await;
    }

    /// Records a lost or failed connection and returns how long to wait.
    fn lost(&mut self, error: &PushError, lasted: Option<Duration>) -> Duration {
        self.status.connected.store(false, Ordering::Relaxed);
        self.status.reconnects.fetch_add(1, Ordering::Relaxed);
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        if lasted.is_some_and(|d| d >= HEALTHY_AFTER) {
            self.backoff = Backoff::default();
        }
        let wait = self.backoff.next();
        tracing::warn!(
            room = %self.target.room,
            target = %self.target,
            %error,
            retry_in_ms = wait.as_millis() as u64,
            "Icecast source connection lost"
        );
        wait
    }
}

/// One source connection: the handshake, the fresh headers and backlog,
/// then each page as it comes. Ends with an error when Icecast goes away,
/// or `Ok` when the room stops sending.
async fn push(
    target: Arc<IcecastTarget>,
    status: Arc<PushStatus>,
    prelude: Bytes,
    mut pages: mpsc::Receiver<Bytes>,
) -> Result<(), PushError> {
    let description =
        preset(&target.room).map_or(crate::music::presets::FOCUS.description, |p| p.description);
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&target, description))
        .await
        .map_err(|_| PushError::Timeout)??;
    status.connected.store(true, Ordering::Relaxed);
    status.connections.fetch_add(1, Ordering::Relaxed);
    tracing::info!(room = %target.room, target = %target, "pushing the room to Icecast");
    let (mut reader, mut writer) = stream.into_split();
    let send = |bytes: Bytes| {
        status
            .bytes_sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        bytes
    };
    writer
        .write_all(&send(prelude))
        .await
        .map_err(PushError::Write)?;
    // What Icecast says after the handshake (the 200 that follows a 100
    // Continue) is read and ignored; reading is how its close is noticed.
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            page = pages.recv() => {
                let Some(page) = page else { return Ok(()) };
                writer.write_all(&send(page)).await.map_err(PushError::Write)?;
            }
            read = reader.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return Err(PushError::Closed),
                Ok(_) => {}
            },
        }
    }
}

/// Connects and sends the source request; returns the socket once Icecast
/// said 100 Continue or 200 OK.
async fn handshake(target: &IcecastTarget, description: &str) -> Result<TcpStream, PushError> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(PushError::Connect)?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(target.request(description).as_bytes())
        .await
        .map_err(PushError::Write)?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    // Icecast's answer head is a few dozen bytes; 8 KB bounds a confused peer.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await.map_err(PushError::Connect)?;
        if n == 0 {
            return Err(PushError::Closed);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(100 | 200..=299) => Ok(stream),
        Some(401) => Err(PushError::Unauthorized),
        _ => Err(PushError::Refused(status_line.chars().take(120).collect())),
    }
}

/// Exponential backoff with jitter: each wait is drawn between half and all
/// of a bound that doubles per failure up to [`BACKOFF_MAX`], so many
/// sources that lost the same Icecast do not return in lockstep.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let bound = BACKOFF_FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        bound.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<IcecastTarget, TargetError> {
        s.parse()
    }

    #[test]
    fn targets_parse_and_never_show_the_password() {
        let t = target("focus=http://source:hackme@127.0.0.1:8000/focus.opus").unwrap();
        assert_eq!(
            (t.room.as_str(), t.host.as_str(), t.port, t.mount.as_str()),
            ("focus", "127.0.0.1", 8000, "/focus.opus")
        );
        assert_eq!(t.password.as_deref(), Some("hackme"));
        assert_eq!(t.to_string(), "http://source@127.0.0.1:8000/focus.opus");
        assert!(!format!("{t:?}").contains("hackme"));
        let t = target("calm=http://[::1]:8001/a/calm.ogg").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("::1", 8001, "source")
        );
        assert_eq!(t.to_string(), "http://source@[::1]:8001/a/calm.ogg");
        assert_eq!(target("x=http://ice/x.opus").unwrap().port, 80);
    }

    #[test]
    fn bad_targets_say_what_is_wrong_without_the_password() {
        let e = |s: &str| target(s).unwrap_err().to_string();
        assert!(e("http://h:8000/a").contains("ROOM=URL"));
        assert!(e("bad room=http://h:8000/a").contains("room must be"));
        let https = e("a=https://source:secret@h/a");
        assert!(
            https.contains("http://") && !https.contains("secret"),
            "{https}"
        );
        assert!(e("a=http://h:99999/a").contains("1 to 65535"));
        assert!(e("a=http://h:8000").contains("mount"));
        assert!(e("a=http://h:8000/a b").contains("mount"));
        assert!(e("a=http://:8000/a").contains("no host"));
        let no_pass = target("a=http://h:8000/a").unwrap().with_password(None);
        assert_eq!(no_pass.unwrap_err(), TargetError::NoPassword("a".into()));
    }

    #[test]
    fn the_request_is_what_icecast_2_4_reads() {
        let t = target("focus=http://h:8000/focus.opus")
            .unwrap()
            .with_password(Some("pw"))
            .unwrap();
        let r = t.request("Warm");
        assert!(r.starts_with("PUT /focus.opus HTTP/1.1\r\n"), "{r}");
        // base64("source:pw")
        assert!(
            r.contains("\r\nAuthorization: Basic c291cmNlOnB3\r\n"),
            "{r}"
        );
        assert!(r.contains("\r\nContent-Type: audio/ogg\r\n"));
        assert!(r.contains("\r\nExpect: 100-continue\r\n"));
        assert!(r.contains("\r\nice-public: 0\r\n"));
        assert!(!r.to_ascii_lowercase().contains("transfer-encoding"));
        assert!(r.ends_with("\r\n\r\n") && !r[..r.len() - 4].contains("\r\n\r\n"));
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| b.next()).collect();
        assert!(waits[0] >= BACKOFF_FIRST / 2 && waits[0] <= BACKOFF_FIRST);
        assert!(waits[3] >= BACKOFF_FIRST * 4 && waits[3] <= BACKOFF_FIRST * 8);
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX));
        assert!(waits[11] >= BACKOFF_MAX / 2);
    }
}
