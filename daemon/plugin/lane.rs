//! A channel's script lane: its script calls run on tokio's blocking pool, never on the
//! async workers, at most `width` at once, and a thread that finishes one call takes the
//! next queued call before it goes back to the pool, so a backlog costs one thread
//! hand-off per batch instead of one per call. Owns only that queue; what a call does (and
//! its deadline, and catching an engine panic) is the sandbox's.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads taking calls from the queue now.
    running: usize,
}

pub(crate) struct ScriptLane {
    queue: Mutex<Queue>,
    width: usize,
}

impl ScriptLane {
    pub(crate) fn new(width: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: 0,
            }),
            width: width.max(1),
        })
    }

    /// Runs `call` in the lane; `None` if it did not return (it panicked, or the runtime
    /// is shutting down).
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(call());
        });
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.jobs.push_back(job);
            let start = q.running < self.width;
            if start {
                q.running += 1;
            }
            start
        };
        if start {
            let lane = self.clone();
            tokio::task::spawn_blocking(move || lane.drain());
        }
        rx.await.ok()
    }

    /// Takes calls until the queue is empty.
    fn drain(&self) {
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                match q.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        q.running -= 1;
                        return;
                    }
                }
            };
            // A call that panics outside the engine ends only itself: its caller gets
            // `None` (its reply is dropped) and the calls queued behind it still run.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_runs_once_and_at_most_width_at_once() {
        let lane = ScriptLane::new(2);
        let now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let (lane, now, most) = (lane.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    lane.run(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let n = now.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(n, SeqCst);
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        now.fetch_sub(1, SeqCst);
                        i * 2
                    })
                    .await
                })
            })
            .collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), Some(i * 2));
        }
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_panics_ends_only_itself() {
        let lane = ScriptLane::new(1);
        let bad = lane.run(|| -> u32 { panic!("boom") });
        let good = lane.run(|| 7u32);
        let (bad, good) = tokio::join!(bad, good);
        assert_eq!(bad, None);
        assert_eq!(good, Some(7));
        // The lane still takes calls afterwards.
        assert_eq!(lane.run(|| 8u32).await, Some(8));
    }
}
