//! A progress bar on stderr for long offline work (a 20-minute render takes
//! seconds with no other sign of life), drawn only when stderr is a
//! terminal, so logs, pipes and CI output never fill with carriage returns.

use std::io::{IsTerminal, Write};
use std::time::Instant;

const WIDTH: usize = 30;

pub struct Progress {
    label: &'static str,
    total: usize,
    /// The last whole percent drawn; None before the first draw.
    shown: Option<usize>,
    enabled: bool,
    started: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Self {
        Self {
            label,
            total: total.max(1),
            shown: None,
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// Redraws when the whole percent has changed.
    pub fn set(&mut self, done: usize) {
        let percent = done.min(self.total) * 100 / self.total;
        if !self.enabled || self.shown == Some(percent) {
            return;
        }
        self.shown = Some(percent);
        let filled = percent * WIDTH / 100;
        let _ = write!(
            std::io::stderr(),
            "\r{} [{}{}] {percent:>3}% {:.1} s",
            self.label,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Clears the bar, leaving the line to the report that follows.
    pub fn finish(&mut self) {
        if self.enabled && self.shown.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
