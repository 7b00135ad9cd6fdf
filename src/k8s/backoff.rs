//! How every watch of the webhook and the controller waits after a failure: one policy, so that
//! recovery after the API server comes back has one bound.
//!
//! kube-runtime's default (client-go's: 0.8 s doubling to 30 s, jitter, reset 2 minutes after
//! the last failure) grows during an outage, while the watch keeps failing to reconnect; when
//! the API server returns, the next try can be half a minute away, and the `410 Expired` that
//! answers the first watch from the old resourceVersion costs another full pause before the
//! re-list. Measured on a real API server stopped for 45 s: a new Ingress got its Event 38 s
//! after it was applied.
//!
//! [`WatchBackoff`] doubles from [`WatchBackoff::INITIAL`] to a ceiling of
//! [`WatchBackoff::CEILING`] (plus up to 20 % jitter, so replicas do not retry in step), and
//! [`resilient`] applies it to a watcher stream:
//! - after a failed list or watch, the stream pauses for the next delay;
//! - every object or list page that arrives (anything but the `Init` marker the watcher
//!   emits *before* each list attempt) resets the delay;
//! - a `410 Expired` from the watch makes the watcher re-list: that happens at once, with the
//!   delay reset, not after the pause the outage built up.
//!
//! So after an outage of any length the watch tries again within `CEILING` × 1.2 of the API
//! server's return, and its first answer (a 410, then the re-list) costs no further pause.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;

/// Bounded exponential backoff with jitter; see the module documentation.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    initial: Duration,
    ceiling: Duration,
    next: Duration,
    /// xorshift state for the jitter.
    seed: u64,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self::new(Self::INITIAL, Self::CEILING)
    }
}

impl WatchBackoff {
    /// The first pause after a failure.
    pub const INITIAL: Duration = Duration::from_millis(500);
    /// The longest pause before jitter (at most 20 % more).
    pub const CEILING: Duration = Duration::from_secs(3);

    /// Start at `initial`, double up to `ceiling`.
    #[must_use]
    pub fn new(initial: Duration, ceiling: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| {
                d.as_nanos() as u64 ^ u64::from(std::process::id())
            })
            | 1;
        Self {
            initial,
            ceiling: ceiling.max(initial),
            next: initial,
            seed,
        }
    }

    /// The longest pause this backoff can give (the ceiling with its jitter).
    #[must_use]
    pub fn longest(&self) -> Duration {
        self.ceiling + self.ceiling / 5
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        // 0..=20 % of d, in steps of 0.1 %.
        d + d * (self.seed % 201) as u32 / 1000
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    /// Never ends: a watch is retried for as long as the process runs.
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        Some(self.jitter(d))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// No pause at all: for a stream whose source is already paced by [`resilient`] (the
/// Controller's trigger backoff).
#[derive(Debug, Clone, Default)]
pub struct NoPause;

impl Iterator for NoPause {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoPause {
    fn reset(&mut self) {}
}

/// Whether the watcher will re-list after this error (`410 Expired`/`Gone` during the watch).
#[must_use]
pub fn is_expired(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(status) if status.code == 410)
}

/// `events` paced by `backoff` as the module documentation says.
pub fn resilient<K, S, B>(
    events: S,
    backoff: B,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    B: Backoff + Send + 'static,
{
    let events: Pin<Box<S>> = Box::pin(events);
    futures::stream::unfold(
        (events, backoff, None::<Duration>),
        |(mut events, mut backoff, pause)| async move {
            if let Some(pause) = pause.filter(|p| !p.is_zero()) {
                tokio::time::sleep(pause).await;
            }
            let item = events.next().await?;
            let pause = match &item {
                // Emitted before every list attempt, failed or not: no evidence of health.
                Ok(watcher::Event::Init) => None,
                Ok(_) => {
                    backoff.reset();
                    None
                }
                Err(e) if is_expired(e) => {
                    tracing::info!(error = %e, "watch expired; re-listing now");
                    backoff.reset();
                    None
                }
                Err(_) => backoff.next(),
            };
            Some((item, (events, backoff, pause)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_ceiling_with_at_most_20_percent_jitter_and_resets() {
        let mut b = WatchBackoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let bases = [500, 1000, 2000, 3000, 3000, 3000, 3000];
        for _round in 0..2 {
            for base in bases {
                let d = b.next().expect("never ends").as_millis();
                assert!(
                    (base..=base * 6 / 5).contains(&d),
                    "{d} ms for a base of {base}"
                );
            }
            b.reset();
        }
        assert_eq!(b.longest(), Duration::from_millis(3600));
    }

    #[allow(clippy::unnecessary_wraps, reason = "an item of the stream")]
    fn ev(n: u32) -> Result<watcher::Event<u32>, watcher::Error> {
        Ok(watcher::Event::Apply(n))
    }

    fn failed() -> Result<watcher::Event<u32>, watcher::Error> {
        Err(watcher::Error::NoResourceVersion)
    }

    fn expired() -> Result<watcher::Event<u32>, watcher::Error> {
        let status = kube::core::Status::failure("too old resource version", "Expired")
            .with_code(410)
            .boxed();
        Err(watcher::Error::WatchError(status))
    }

    /// The pause before each item, on a mocked clock.
    async fn pauses(items: Vec<Result<watcher::Event<u32>, watcher::Error>>) -> Vec<Duration> {
        let backoff = WatchBackoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let mut s = std::pin::pin!(resilient(futures::stream::iter(items), backoff));
        let mut out = Vec::new();
        let mut last = tokio::time::Instant::now();
        while s.next().await.is_some() {
            let now = tokio::time::Instant::now();
            out.push(now - last);
            last = now;
        }
        out
    }

    fn secs(d: &[Duration]) -> Vec<u64> {
        d.iter().map(Duration::as_secs).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn failures_pause_objects_reset_and_410_relists_at_once() {
        let got = pauses(vec![
            failed(),
            failed(),
            failed(),
            failed(),
            // Init precedes every list attempt: it must not reset the delay.
            Ok(watcher::Event::Init),
            failed(),
            expired(),
            Ok(watcher::Event::Init),
            failed(),
            ev(1),
            failed(),
            ev(2),
        ])
        .await;
        // Whole seconds: the jitter adds at most 20 %, below the next second for bases <= 4 s.
        assert_eq!(secs(&got), [0, 1, 2, 4, 4, 0, 4, 0, 0, 1, 0, 1]);
    }
}
