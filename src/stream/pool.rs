//! A small pool of render threads shared by all sessions. Synthesis is CPU
//! work: it runs here, off the async reactor, and the pool always takes the
//! job whose chunk is due soonest (earliest deadline first), so a session
//! that fell behind is served before one that is comfortably ahead, and no
//! session can starve the others. Each session has at most one job queued, so
//! the queue is bounded by the session limit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

type Work = Box<dyn FnOnce() + Send>;

struct Job {
    deadline: Instant,
    order: u64,
    work: Work,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// Reversed, so the max-heap pops the earliest deadline (then the oldest).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .deadline
            .cmp(&self.deadline)
            .then_with(|| other.order.cmp(&self.order))
    }
}

#[derive(Default)]
struct Queue {
    jobs: BinaryHeap<Job>,
    next_order: u64,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

pub struct RenderPool {
    shared: Arc<Shared>,
    threads: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the render pool has shut down")]
pub struct PoolClosed;

impl RenderPool {
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("auralis-render-{i}"))
                .spawn(move || worker(&shared))
                .expect("spawning a render thread at startup");
        }
        Self { shared, threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a render thread, ordered by `deadline`, and awaits its result.
    pub async fn run<T, F>(&self, deadline: Instant, f: F) -> Result<T, PoolClosed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        {
            let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                return Err(PoolClosed);
            }
            let order = q.next_order;
            q.next_order += 1;
            q.jobs.push(Job {
                deadline,
                order,
                work: Box::new(move || {
                    let _ = tx.send(f());
                }),
            });
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| PoolClosed)
    }
}

impl Drop for RenderPool {
    fn drop(&mut self) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.closed = true;
        q.jobs.clear();
        drop(q);
        self.shared.ready.notify_all();
    }
}

fn worker(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop() {
                    break job;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        (job.work)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn returns_the_result() {
        let pool = RenderPool::new(2);
        assert_eq!(pool.run(Instant::now(), || 6 * 7).await.unwrap(), 42);
    }

    #[test]
    fn earliest_deadline_is_served_first() {
        let now = Instant::now();
        let mut heap = BinaryHeap::new();
        for (i, ms) in [300u64, 100, 200, 100].into_iter().enumerate() {
            heap.push(Job {
                deadline: now + Duration::from_millis(ms),
                order: i as u64,
                work: Box::new(|| ()),
            });
        }
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|j| j.order)).collect();
        assert_eq!(order, vec![1, 3, 2, 0]);
    }
}
