//! Whether the peer of an HTTP stream is still taking what we send.
//!
//! A listener's queue notices a player that stopped reading only once every
//! buffer between the two has filled: the peer's receive buffer, our send
//! buffer, hyper's. At 32 kbit/s those hold tens of seconds of Opus, so a
//! stalled player kept its session for minutes. The kernel knows better:
//! `TCP_INFO` carries the window the peer advertises, which is the room left
//! in its receive buffer. A player that reads keeps it open; one that stopped
//! reading lets it shrink by every byte it accepts, to zero. A window below
//! half its widest for [`STALL`] is a player that stopped reading, seen
//! seconds after its buffer started to fill instead of after it filled.
//! Kernels older than 6.2 do not report the window; there the verdict is a
//! standstill of the acknowledged byte count while data waits, which comes
//! only once the window has closed.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use tokio::net::TcpStream;

/// How long the peer's window may stay mostly closed. A player reading in
/// real time frees its buffer every chunk (100 ms); a network outage this
/// long would have emptied any player's buffer anyway.
pub const STALL: Duration = Duration::from_secs(4);
/// How often the acknowledged count is read: one system call per stream.
const POLL: Duration = Duration::from_millis(250);

/// The connection a request came on, as a request extension: its socket's
/// descriptor number, used only while a request on that connection is being
/// served (so the number cannot yet name another socket).
#[derive(Debug, Clone, Copy)]
pub struct PeerSocket(RawFd);

impl PeerSocket {
    pub fn of(tcp: &TcpStream) -> Self {
        PeerSocket(tcp.as_raw_fd())
    }

    /// A watch on the connection, holding a descriptor of its own so the
    /// socket it reads is this connection's for as long as the watch lives.
    /// Must be called while the request that carried `self` is being served.
    pub fn watch(self) -> Option<PeerWatch> {
        // SAFETY: hyper owns the descriptor and keeps it open while it
        // serves a request on the connection, which is when this is called;
        // the borrow ends at once, with a duplicate of our own.
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) }
            .try_clone_to_owned()
            .ok()?;
        tcp_progress(&fd)?;
        Some(PeerWatch { fd })
    }
}

/// What `TCP_INFO` says about the sending side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpProgress {
    /// Bytes the peer has acknowledged since the connection opened.
    acked: u64,
    /// Sent but unacknowledged segments, or bytes not yet sent.
    waiting: bool,
    /// The peer's advertised receive window in bytes, where the kernel says.
    window: Option<u32>,
}

/// The verdict over successive readings: when the peer last looked like a
/// reader, and what it has shown so far.
#[derive(Debug, Default)]
struct StallClock {
    acked: u64,
    widest: u32,
    reading_at: Duration,
}

impl StallClock {
    /// Takes a reading at `now` (time since the watch began); true once the
    /// peer has not looked like a reader for [`STALL`].
    fn stalled(&mut self, p: TcpProgress, now: Duration) -> bool {
        let reading = match p.window {
            Some(w) => {
                self.widest = self.widest.max(w);
                w >= self.widest / 2
            }
            None => p.acked != self.acked || !p.waiting,
        };
        self.acked = p.acked;
        if reading {
            self.reading_at = now;
        }
        now.saturating_sub(self.reading_at) >= STALL
    }
}

pub struct PeerWatch {
    fd: OwnedFd,
}

impl PeerWatch {
    /// Returns once the peer has looked like a reader that stopped for
    /// [`STALL`]; never if the kernel stops answering.
    pub async fn stalled(&mut self) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let began = tokio::time::Instant::now();
        let mut clock = StallClock::default();
        loop {
            let now = tick.tick().await;
            let Some(p) = tcp_progress(&self.fd) else {
                return std::future::pending().await;
            };
            if clock.stalled(p, now.duration_since(began)) {
                return;
            }
        }
    }

    /// Ends the connection with a reset rather than a FIN queued behind
    /// data the peer will never take: hyper's next write fails, it closes
    /// the connection, and the kernel frees the buffers at once.
    pub fn abort(&self) {
        let sock = socket2::SockRef::from(&self.fd);
        let _ = sock.set_linger(Some(Duration::ZERO));
        let _ = sock.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(target_os = "linux")]
fn tcp_progress(fd: &OwnedFd) -> Option<TcpProgress> {
    // SAFETY: tcp_info is plain integers, valid zeroed; the kernel writes at
    // most `len` bytes into it (fewer on older kernels, leaving zeros).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a buffer of `len` bytes, and `len` itself.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    // Each kernel fills the fields it knows: before 4.6 not even the unsent
    // bytes (no verdict there), before 6.2 not the window.
    let filled = |end: usize| len as usize >= end;
    let notsent_end = std::mem::offset_of!(libc::tcp_info, tcpi_notsent_bytes) + 4;
    let window_end = std::mem::offset_of!(libc::tcp_info, tcpi_snd_wnd) + 4;
    (rc == 0 && filled(notsent_end)).then_some(TcpProgress {
        acked: info.tcpi_bytes_acked,
        waiting: info.tcpi_unacked > 0 || info.tcpi_notsent_bytes > 0,
        window: filled(window_end).then_some(info.tcpi_snd_wnd),
    })
}

/// Elsewhere the kernel is not asked; the listener's queue still drops a
/// stalled reader, later.
#[cfg(not(target_os = "linux"))]
fn tcp_progress(_fd: &OwnedFd) -> Option<TcpProgress> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(clock: &mut StallClock, ms: u64, acked: u64, window: Option<u32>) -> bool {
        let p = TcpProgress {
            acked,
            waiting: true,
            window,
        };
        clock.stalled(p, Duration::from_millis(ms))
    }

    #[test]
    fn a_window_that_stays_open_is_a_reader() {
        let mut c = StallClock::default();
        for i in 0..100 {
            let w = 16_384 - (i % 3) * 1_000;
            assert!(!at(&mut c, i * 250, i * 500, Some(w as u32)));
        }
    }

    #[test]
    fn a_window_closing_while_data_is_taken_is_a_stall() {
        let mut c = StallClock::default();
        let mut ms = 0;
        let mut window = 16_384u32;
        // Accepting 1,100 bytes a poll and reading none: acked moves, but
        // the verdict counts from when the window fell below half.
        while window >= 8_192 {
            assert!(!at(&mut c, ms, u64::from(16_384 - window), Some(window)));
            window -= 1_100;
            ms += 250;
        }
        let half = ms;
        while ms < half + STALL.as_millis() as u64 - 250 {
            assert!(!at(&mut c, ms, u64::from(16_384 - window), Some(window)));
            window = window.saturating_sub(1_100);
            ms += 250;
        }
        assert!(at(&mut c, half + STALL.as_millis() as u64, 16_384, Some(0)));
    }

    #[test]
    fn without_the_window_a_standstill_with_data_waiting_is_a_stall() {
        let mut c = StallClock::default();
        assert!(!at(&mut c, 0, 1_000, None));
        assert!(!at(&mut c, 250, 2_000, None));
        assert!(!at(&mut c, 250 + STALL.as_millis() as u64 - 1, 2_000, None));
        assert!(at(&mut c, 250 + STALL.as_millis() as u64, 2_000, None));
        // Nothing waiting: an idle connection, not a stalled one.
        let idle = TcpProgress {
            acked: 2_000,
            waiting: false,
            window: None,
        };
        assert!(!c.stalled(idle, Duration::from_secs(60)));
    }
}
