//! The accept loop. It is ours rather than `axum::serve` so that slow and
//! greedy clients meet limits before they cost anything: a deadline for a
//! request's headers, a cap on connections that have not yet sent one, a
//! cap on connections per client address, and the security headers on
//! every answer.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::client::{Client, TrustedProxies};
use super::peer::PeerSocket;
use crate::stream::access::{PerIp, PerIpSlot};

/// How the server treats connections before and beside their requests.
#[derive(Debug, Clone)]
pub struct Security {
    /// Time a client has to send a request's headers, on a new connection
    /// and between requests on a kept-alive one.
    pub header_read_timeout: Duration,
    /// Connections that have not completed a request yet; above it new
    /// connections are closed at once, so a flood of half-open
    /// connections cannot use up the server's file descriptors.
    pub max_pending: usize,
    /// Connections one client address may hold open (streams included).
    pub max_connections_per_ip: usize,
    /// Peers whose `Forwarded` / `X-Forwarded-For` header names the client.
    pub trusted_proxies: TrustedProxies,
    /// `--status-paths`: /api/status shows the SoundFonts' file paths.
    pub status_paths: bool,
}

pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_PENDING: usize = 256;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 32;

impl Default for Security {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            trusted_proxies: TrustedProxies::default(),
            status_paths: false,
        }
    }
}

/// Largest request head (request line and headers) read; above it the
/// client gets 431. A page's request is well under 2 KiB.
pub const MAX_REQUEST_HEAD: usize = 32 * 1024;
/// Connections over their address's limit that are being told so (a 429
/// once their request arrives); above it they are closed unanswered, so an
/// address over its limit cannot fill the server with refusals either.
const MAX_REFUSING: usize = 64;
/// A failed accept (out of file descriptors, say) is retried after this,
/// rather than in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The page's whole needs: its own scripts (modules and the AudioWorklet),
/// styles, the WebSocket and /api on the same host, /listen.* in `<audio>`,
/// and the `data:` favicon. Nothing inline, nothing from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Connections open (any state), with a signal when the last one closes.
#[derive(Default)]
struct Open {
    count: AtomicUsize,
    idle: Notify,
}

/// A connection that has not completed a request: counted from accept
/// until its first request's headers arrive, or until it closes.
struct Pending {
    counter: Arc<AtomicUsize>,
    counted: AtomicBool,
}

impl Pending {
    /// A place among at most `cap`, if one is free.
    fn acquire(counter: &Arc<AtomicUsize>, cap: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(Self {
            counter: Arc::clone(counter),
            counted: AtomicBool::new(true),
        })
    }

    fn release(&self) {
        if self.counted.swap(false, Ordering::Relaxed) {
            self.counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

/// How one connection's requests are counted against its client.
enum Admission {
    /// A direct client within its limit: the connection holds one place.
    Direct(Arc<PerIpSlot>),
    /// A direct client over its limit: every request gets 429.
    Refused,
    /// A trusted proxy: each request takes a place for the client the
    /// proxy names, for as long as its response lasts.
    Proxied,
}

struct Connection {
    app: Router,
    peer: IpAddr,
    socket: PeerSocket,
    admission: Admission,
    pending: Pending,
    per_ip: Arc<PerIp>,
    trusted: TrustedProxies,
}

impl Connection {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        self.pending.release();
        let addr = self.trusted.client_addr(self.peer, request.headers());
        let (slot, per_request) = match &self.admission {
            Admission::Direct(slot) => (Some(Arc::clone(slot)), false),
            Admission::Refused => (None, false),
            Admission::Proxied => (self.per_ip.try_acquire(addr).map(Arc::new), true),
        };
        let Some(slot) = slot else {
            return secure(too_many_connections(self.per_ip.limit()));
        };
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(Client {
            addr,
            _slot: Arc::clone(&slot),
        });
        request.extensions_mut().insert(self.socket);
        let response = match self.app.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let response = if per_request {
            // The place is held until the body ends: an HTTP stream through
            // a proxy counts for as long as it plays.
            response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held = &slot;
                    frame
                }))
            })
        } else {
            response
        };
        secure(response)
    }
}

fn too_many_connections(limit: usize) -> Response<Body> {
    let mut r = Response::new(Body::from(format!(
        "too many connections from your address: at most {limit} at once\n"
    )));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    r
}

/// Adds the security headers every answer carries (the audio and the 101
/// of a WebSocket too: they cost nothing there and need no exceptions).
fn secure(mut response: Response<Body>) -> Response<Body> {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections
/// finish (their own owners bound how long).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    security: Security,
    shutdown: CancellationToken,
    configure: fn(&TcpStream),
) -> std::io::Result<()> {
    let per_ip = PerIp::new(security.max_connections_per_ip);
    let pending = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(Open::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(security.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD);
    loop {
        let (tcp, peer): (TcpStream, SocketAddr) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let peer = peer.ip().to_canonical();
        let admission = if security.trusted_proxies.contains(peer) {
            Admission::Proxied
        } else {
            match per_ip.try_acquire(peer) {
                Some(slot) => Admission::Direct(Arc::new(slot)),
                None => Admission::Refused,
            }
        };
        // A refused connection waits for its request among the refusals, so
        // that it cannot take the place of a welcome one.
        let (waiting, cap) = match admission {
            Admission::Refused => (&refusing, MAX_REFUSING),
            _ => (&pending, security.max_pending),
        };
        let Some(pending) = Pending::acquire(waiting, cap) else {
            tracing::debug!(%peer, "closing a connection: too many have not sent a request");
            continue;
        };
        configure(&tcp);
        let connection = Arc::new(Connection {
            app: app.clone(),
            peer,
            socket: PeerSocket::of(&tcp),
            admission,
            pending,
            per_ip: Arc::clone(&per_ip),
            trusted: security.trusted_proxies.clone(),
        });
        let service = hyper::service::service_fn(move |request| {
            let connection = Arc::clone(&connection);
            async move { Ok::<_, Infallible>(connection.handle(request).await) }
        });
        let conn = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let stop = shutdown.clone();
        let open = Arc::clone(&open);
        open.count.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            if open.count.fetch_sub(1, Ordering::Relaxed) == 1 {
                open.idle.notify_waiters();
            }
        });
    }
    loop {
        let idle = open.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        if open.count.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        idle.await;
    }
}
