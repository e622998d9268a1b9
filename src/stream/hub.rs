//! Where listeners find their session: a fresh one of their own by default,
//! or a shared room by name. The hub also enforces the listener and session
//! limits and knows the counts that /api/status reports.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::access::{Access, PerIp, RoomControl, RoomKey};
use super::metrics::Metrics;
use super::pool::RenderPool;
use super::session::{
    self, CloseReason, JoinInfo, ListenerEntry, Outgoing, Parking, SessionHandle, SessionSpec,
};
use crate::audio::CHUNK_FRAMES;
use crate::music::Params;
use crate::pipeline::{EngineFactory, EngineSource, Renderer};
use crate::soundfont::FontSet;
use crate::synth::{EngineKind, EngineSettings};

#[derive(Clone)]
pub struct HubConfig {
    pub fonts: FontSet,
    pub engine: EngineSettings,
    /// Which synthesizer every session renders with (`serve --engine`).
    pub engine_kind: EngineKind,
    pub max_listeners: usize,
    pub max_sessions: usize,
    pub max_rooms: usize,
    /// Chunks a listener may have waiting before it counts as stalled.
    pub queue_chunks: usize,
    /// Chunks rendered ahead of the wall clock (2 = 200 ms).
    pub lead_chunks: u64,
    /// Room control keys and the per-address session limit.
    pub access: Access,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    #[error("server full: {limit} listeners already connected; try again later")]
    TooManyListeners { limit: usize },
    #[error(
        "server full: {limit} sessions already running; join a shared room or try again later"
    )]
    TooManySessions { limit: usize },
    #[error("too many sessions from your address: {limit} already running; close one or join a shared room")]
    TooManySessionsFromAddress { limit: usize },
    #[error("too many rooms: {limit} already open; join an existing room or try again later")]
    TooManyRooms { limit: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("cannot start a synthesizer: {0}")]
    Engine(String),
}

/// A listener coming back: the token its `hello` gave, and the first chunk
/// it still needs. A session kept under the token is reattached; otherwise
/// (e.g. after a server restart) the piece is rebuilt from the parameters
/// and seed of the request at that chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub token: String,
    pub from: u64,
}

/// Whether a listener of its own session can come back to it.
enum Comeback {
    /// A WebSocket listener: its `hello` offers a token, and a session it
    /// drops waits for it.
    Offer,
    /// An HTTP stream: no player brings a token back, so a session it drops
    /// ends at once instead of holding a slot for the grace period.
    Never,
    /// A listener coming back with its token.
    From(Resume),
}

/// A listener's end of its session: its queue, the signal that the server
/// closed it, and what it needs to say hello.
pub struct Listener {
    pub id: u64,
    pub session: SessionHandle,
    pub info: JoinInfo,
    pub queue: mpsc::Receiver<Outgoing>,
    pub kicked: oneshot::Receiver<CloseReason>,
    /// The room's control key, for the listener that created the room (and
    /// only when the key was made for it rather than configured).
    pub control_key: Option<RoomKey>,
    hub: Arc<Hub>,
}

impl Listener {
    /// Leaves the session; the listener count drops at once.
    pub async fn leave(self) {
        self.session.leave(self.id).await;
    }

    /// Leaves because the connection died: a session of its own waits a
    /// while for the listener to come back with its resume token.
    pub async fn detach(self) {
        self.session.detach(self.id).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.hub.listeners.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.hub.idle.notify_waiters();
        }
    }
}

pub struct Hub {
    config: HubConfig,
    /// What every session's synthesizers are built from.
    engines: EngineSource,
    pool: Arc<RenderPool>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    rooms: Mutex<HashMap<String, SessionHandle>>,
    /// Sessions of their own listener, by resume token (rooms are not here).
    resumable: Mutex<HashMap<Arc<str>, SessionHandle>>,
    /// Sessions waiting for their dropped listener (see `session::RESUME_GRACE`).
    waiting: Arc<AtomicUsize>,
    listeners: AtomicUsize,
    /// Woken when the last listener leaves (shutdown waits on it).
    idle: Notify,
    sessions: Arc<AtomicUsize>,
    /// Running sessions by the address that started them.
    sessions_by_ip: Arc<PerIp>,
    next_id: AtomicU64,
}

impl Hub {
    /// A hub whose sessions play the configured SoundFonts with the configured engine.
    pub fn new(config: HubConfig, render_threads: usize, shutdown: CancellationToken) -> Arc<Self> {
        Self::build(config, render_threads, shutdown, None)
    }

    /// A hub whose sessions get their synthesizer from `make_engine` (tests
    /// give a signal generator, so session logic is checked without fonts).
    pub fn with_engine(
        config: HubConfig,
        render_threads: usize,
        shutdown: CancellationToken,
        make_engine: EngineFactory,
    ) -> Arc<Self> {
        Self::build(config, render_threads, shutdown, Some(make_engine))
    }

    fn build(
        config: HubConfig,
        render_threads: usize,
        shutdown: CancellationToken,
        custom: Option<EngineFactory>,
    ) -> Arc<Self> {
        let engines = EngineSource {
            settings: config.engine,
            custom,
            ..EngineSource::new(config.engine_kind, &config.fonts)
        };
        let sessions_by_ip = PerIp::new(config.access.max_sessions_per_ip);
        Arc::new(Self {
            sessions_by_ip,
            config,
            engines,
            pool: Arc::new(RenderPool::new(render_threads)),
            metrics: Arc::new(Metrics::new()),
            shutdown,
            rooms: Mutex::new(HashMap::new()),
            resumable: Mutex::new(HashMap::new()),
            waiting: Arc::new(AtomicUsize::new(0)),
            listeners: AtomicUsize::new(0),
            idle: Notify::new(),
            sessions: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }

    /// Resolves once no listener is connected.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.listeners() == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    pub fn rooms(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn render_threads(&self) -> usize {
        self.pool.threads()
    }

    /// Checks the limits without joining, so an HTTP upgrade can be refused
    /// with a 503 before the WebSocket handshake.
    pub fn admit(&self, room: Option<&str>) -> Result<(), JoinError> {
        self.admit_from(None, room)
    }

    /// [`Hub::admit`] for a client at `client`, whose own running sessions
    /// count against the per-address limit.
    pub fn admit_from(&self, client: Option<IpAddr>, room: Option<&str>) -> Result<(), JoinError> {
        if self.shutdown.is_cancelled() {
            return Err(JoinError::ShuttingDown);
        }
        if self.listeners() >= self.config.max_listeners {
            return Err(JoinError::TooManyListeners {
                limit: self.config.max_listeners,
            });
        }
        let existing_room = room.is_some_and(|r| {
            self.rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(r)
                .is_some_and(|h| !h.is_closed())
        });
        if !existing_room {
            if self.sessions() >= self.config.max_sessions {
                return Err(JoinError::TooManySessions {
                    limit: self.config.max_sessions,
                });
            }
            if room.is_some() && self.rooms() >= self.config.max_rooms {
                return Err(JoinError::TooManyRooms {
                    limit: self.config.max_rooms,
                });
            }
            if client.is_some_and(|ip| self.sessions_by_ip.count(ip) >= self.sessions_by_ip.limit())
            {
                return Err(self.too_many_from_address());
            }
        }
        Ok(())
    }

    /// Sessions now waiting for a dropped listener to resume them.
    pub fn waiting_for_resume(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// At most this many sessions wait for their listener at once: a
    /// quarter of the session limit, so dropped listeners never crowd out
    /// new ones for long.
    fn max_waiting(&self) -> usize {
        (self.config.max_sessions / 4).max(1)
    }

    /// Joins the named room (creating it with `params` if it does not exist)
    /// or, without a room, starts a session of the listener's own.
    pub async fn join(
        self: &Arc<Self>,
        room: Option<String>,
        params: Params,
        preset: Option<String>,
    ) -> Result<Listener, JoinError> {
        self.join_resuming(None, room, params, preset, None).await
    }

    /// [`Hub::join`] for a client at `client` (a session it starts counts
    /// against its address until the session ends) that may be coming back
    /// (see [`Resume`]).
    pub async fn join_resuming(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        room: Option<String>,
        params: Params,
        preset: Option<String>,
        resume: Option<Resume>,
    ) -> Result<Listener, JoinError> {
        let comeback = resume.map_or(Comeback::Offer, Comeback::From);
        self.join_as(client, room, params, preset, comeback).await
    }

    /// As [`Hub::join_resuming`], for a listener that cannot come back (an HTTP
    /// stream): its session ends with it.
    pub async fn join_once(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        room: Option<String>,
        params: Params,
        preset: Option<String>,
    ) -> Result<Listener, JoinError> {
        self.join_as(client, room, params, preset, Comeback::Never)
            .await
    }

    async fn join_as(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        room: Option<String>,
        params: Params,
        preset: Option<String>,
        comeback: Comeback,
    ) -> Result<Listener, JoinError> {
        let kept = match (&comeback, &room) {
            (Comeback::From(r), None) => self.kept(&r.token).map(|h| (h, r.from)),
            _ => None,
        };
        if kept.is_some() {
            self.admit_listener()?;
        } else {
            self.admit_from(client, room.as_deref())?;
        }
        self.listeners.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // From here on the count is released by Listener's Drop, or below.
        let rejoined = match kept {
            Some((handle, from)) => self.rejoin(id, &handle, from).await,
            None => None,
        };
        let joined = match rejoined {
            Some(listener) => Ok(listener),
            None => {
                self.join_counted(id, client, room, params, preset, comeback)
                    .await
            }
        };
        if joined.is_err() {
            self.listeners.fetch_sub(1, Ordering::Relaxed);
        }
        joined
    }

    fn kept(&self, token: &str) -> Option<SessionHandle> {
        let kept = self.resumable.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(token).filter(|h| !h.is_closed()).cloned()
    }

    fn admit_listener(&self) -> Result<(), JoinError> {
        if self.shutdown.is_cancelled() {
            return Err(JoinError::ShuttingDown);
        }
        if self.listeners() >= self.config.max_listeners {
            return Err(JoinError::TooManyListeners {
                limit: self.config.max_listeners,
            });
        }
        Ok(())
    }

    /// Reattaches a listener to the session kept under its token; None if
    /// that session ended meanwhile.
    async fn rejoin(
        self: &Arc<Self>,
        id: u64,
        handle: &SessionHandle,
        from: u64,
    ) -> Option<Listener> {
        let (entry, queue, kicked) = self.entry(id);
        let info = handle.join(entry, Some(from)).await.ok()?;
        Some(Listener {
            id,
            session: handle.clone(),
            info,
            queue,
            kicked,
            control_key: None,
            hub: Arc::clone(self),
        })
    }

    fn entry(
        &self,
        id: u64,
    ) -> (
        ListenerEntry,
        mpsc::Receiver<Outgoing>,
        oneshot::Receiver<CloseReason>,
    ) {
        let (queue_tx, queue) = mpsc::channel(self.config.queue_chunks.max(2));
        let (kick, kicked) = oneshot::channel();
        let entry = ListenerEntry {
            id,
            queue: queue_tx,
            kick,
        };
        (entry, queue, kicked)
    }

    async fn join_counted(
        self: &Arc<Self>,
        id: u64,
        client: Option<IpAddr>,
        room: Option<String>,
        params: Params,
        preset: Option<String>,
        comeback: Comeback,
    ) -> Result<Listener, JoinError> {
        // A room whose session is ending refuses the join; the next attempt
        // finds it gone and starts a new one. Two tries suffice.
        for _ in 0..2 {
            let (entry, queue, kicked) = self.entry(id);
            let start = Start {
                client,
                room: room.as_deref(),
                params: &params,
                preset: &preset,
                comeback: &comeback,
            };
            let (session, info, control_key) = match self.find_or_start(start, entry)? {
                Found::Started(handle, info, key) => (handle, info, key),
                Found::Existing(handle, entry) => match handle.join(entry, None).await {
                    Ok(info) => (handle, info, None),
                    Err(_) => continue,
                },
            };
            return Ok(Listener {
                id,
                session,
                info,
                queue,
                kicked,
                control_key,
                hub: Arc::clone(self),
            });
        }
        Err(JoinError::ShuttingDown)
    }

    /// Looks the room up and, if it is not running, starts its session, all
    /// under one lock so two listeners arriving together share one session.
    fn find_or_start(
        self: &Arc<Self>,
        start: Start,
        first: ListenerEntry,
    ) -> Result<Found, JoinError> {
        let Start {
            client,
            room,
            params,
            preset,
            comeback,
        } = start;
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = room {
            if let Some(h) = rooms.get(r).filter(|h| !h.is_closed()) {
                return Ok(Found::Existing(h.clone(), first));
            }
            if !rooms.contains_key(r) && rooms.len() >= self.config.max_rooms {
                return Err(JoinError::TooManyRooms {
                    limit: self.config.max_rooms,
                });
            }
        }
        if self.sessions() >= self.config.max_sessions {
            return Err(JoinError::TooManySessions {
                limit: self.config.max_sessions,
            });
        }
        let owner = match client {
            Some(ip) => Some(
                self.sessions_by_ip
                    .try_acquire(ip)
                    .ok_or_else(|| self.too_many_from_address())?,
            ),
            None => None,
        };
        let (control, told) = match room {
            Some(r) => self.config.access.for_client_room(r),
            None => (RoomControl::Anyone, false),
        };
        let control_key = match &control {
            RoomControl::Key(key) if told => Some(key.clone()),
            _ => None,
        };
        let id: Arc<str> = format!("s{}", self.next_id.fetch_add(1, Ordering::Relaxed)).into();
        let mut renderer = Renderer::new(params.clone(), &self.engines)
            .map_err(|e| JoinError::Engine(e.to_string()))?;
        // A listener of its own can come back to this session; a room is
        // found again by its name.
        let (first_seq, token): (u64, Option<Arc<str>>) = match (comeback, room) {
            (_, Some(_)) | (Comeback::Never, None) => (0, None),
            (Comeback::Offer, None) => (0, Some(new_token().into())),
            (Comeback::From(r), None) => (r.from, Some(r.token.as_str().into())),
        };
        if first_seq > 0 {
            renderer.skip_to(first_seq * CHUNK_FRAMES as u64);
        }
        let spec = SessionSpec {
            id: id.clone(),
            room: room.map(Arc::from),
            control,
            renderer,
            preset: preset.clone(),
            first_seq,
            resume: token.clone(),
            parking: token.as_ref().map(|_| Parking {
                waiting: Arc::clone(&self.waiting),
                max: self.max_waiting(),
            }),
            lead_chunks: self.config.lead_chunks,
            pool: Arc::clone(&self.pool),
            metrics: Arc::clone(&self.metrics),
            shutdown: self.shutdown.clone(),
        };
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let hub = Arc::downgrade(self);
        let sessions = Arc::clone(&self.sessions);
        let room_name = room.map(str::to_string);
        let session_id = id.clone();
        let ended_token = token.clone();
        let (handle, info) = session::spawn(spec, first, move || {
            drop(owner);
            sessions.fetch_sub(1, Ordering::Relaxed);
            let Some(hub) = hub.upgrade() else { return };
            if let Some(r) = room_name {
                let mut rooms = hub.rooms.lock().unwrap_or_else(|e| e.into_inner());
                if rooms.get(&r).is_some_and(|h| h.id == session_id) {
                    rooms.remove(&r);
                }
            }
            if let Some(t) = ended_token {
                let mut kept = hub.resumable.lock().unwrap_or_else(|e| e.into_inner());
                if kept.get(&t).is_some_and(|h| h.id == session_id) {
                    kept.remove(&t);
                }
            }
        });
        if let Some(r) = room {
            rooms.insert(r.to_string(), handle.clone());
        }
        if let Some(t) = token {
            let mut kept = self.resumable.lock().unwrap_or_else(|e| e.into_inner());
            kept.insert(t, handle.clone());
        }
        Ok(Found::Started(handle, info, control_key))
    }

    fn too_many_from_address(&self) -> JoinError {
        JoinError::TooManySessionsFromAddress {
            limit: self.sessions_by_ip.limit(),
        }
    }
}

/// What a new session starts from.
struct Start<'a> {
    client: Option<IpAddr>,
    room: Option<&'a str>,
    params: &'a Params,
    preset: &'a Option<String>,
    comeback: &'a Comeback,
}

/// 128 random bits: a token cannot be guessed to take over another
/// listener's session.
fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

enum Found {
    Existing(SessionHandle, ListenerEntry),
    Started(SessionHandle, JoinInfo, Option<RoomKey>),
}
