//! Churn: 10,000 Ingresses created and deleted in bursts through the controller's own path
//! (watch events -> trimming reflector -> Controller -> reconcile -> Event queue), with an
//! API server stand-in that knows which objects exist when an Event arrives.
//!
//! Ten bursts; each creates 1,000 Ingresses (`ingress(i)` of the benchmarks: rules, TLS, a
//! `last-applied-configuration`; one in ten with a bad `configuration-snippet`), and 10 ms
//! later, while their Events are being written (each write takes 2 ms, four at a time),
//! deletes 900 of them: all but `i % 20 < 2`, so 1,000 are left, 500 of them bad, and 500 bad
//! ones are deleted. Then the 1,000 left are deleted too. Prints RSS when idle, at the peak,
//! after the churn and after the last deletions; the Warning Events per Ingress that exists
//! after the churn (must be exactly one per finding); the Events written about an object that
//! no longer existed when the write arrived; and the queue's counters. A second round creates
//! and deletes `COUNT` more: RSS that stays level shows memory reused, not leaked.
//!
//! ```sh
//! cargo run --release --example controller_churn [-- COUNT]
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use kube::runtime::{reflector, watcher};
use snippet_guard::Settings;
use snippet_guard::k8s::controller::{
    ConfigSnapshot, Context, Metrics, Publish, ingress_controller, ingress_trigger,
    metrics::KindLabels,
};
use tokio::sync::{mpsc, watch};

#[path = "../benches/support/ingresses.rs"]
mod ingresses;
use ingresses::ingress;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The API server's side of Event writes: which objects exist, and what was written.
#[derive(Debug, Default)]
struct Server {
    live: Mutex<HashSet<String>>,
    /// Warnings written per `namespace/name`.
    warnings: Mutex<HashMap<String, usize>>,
    /// Events about an object that did not exist when the write arrived.
    about_deleted: Mutex<usize>,
}

impl Publish for Server {
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        regarding: &'a ObjectReference,
    ) -> BoxFuture<'a, Result<(), kube::Error>> {
        Box::pin(async move {
            let key = format!(
                "{}/{}",
                regarding.namespace.as_deref().unwrap_or_default(),
                regarding.name.as_deref().unwrap_or_default()
            );
            // The write arrives; the answer takes a while, as over the network.
            if !self.live.lock().unwrap().contains(&key) {
                *self.about_deleted.lock().unwrap() += 1;
            }
            if matches!(event.type_, EventType::Warning) {
                *self.warnings.lock().unwrap().entry(key).or_default() += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(())
        })
    }
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[allow(clippy::cast_precision_loss, reason = "KiB far below 2^52")]
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn key(i: usize) -> String {
    format!("team-{}/app-{i}", i % 200)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let (_config_tx, config_rx) = watch::channel(Arc::new(ConfigSnapshot::of(&[], &[])));
        let (_leader_tx, leader_rx) = watch::channel(true);
        let (_excluded_tx, excluded_rx) = watch::channel(Some(Arc::default()));
        let server = Arc::new(Server::default());
        let metrics = Arc::new(Metrics::new());
        let ctx = Arc::new(Context::new(
            Settings::default(),
            server.clone(),
            config_rx,
            leader_rx,
            excluded_rx,
            metrics.clone(),
        ));
        let (tx, rx) = mpsc::unbounded_channel::<watcher::Event<_>>();
        let events =
            futures::stream::iter([Ok(watcher::Event::Init), Ok(watcher::Event::InitDone)]).chain(
                futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|e| (Ok(e), rx))
                }),
            );
        let (reader, writer) = reflector::store();
        let trigger = ingress_trigger(
            events,
            writer,
            ctx.clone(),
            None,
            Arc::new(AtomicBool::new(false)),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(
            ingress_controller(trigger, reader.clone(), ctx.clone(), async move {
                let _ = stopped.await;
            })
            .for_each(|()| std::future::ready(())),
        );
        let reconciles = metrics.reconciles.get_or_create(&KindLabels {
            kind: "Ingress".into(),
        });
        let settle = || async {
            // Settled: no reconcile and no Event write for a second.
            let mut last = (u64::MAX, usize::MAX);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = (reconciles.get(), ctx.queue.backlog());
                if now == last && now.1 == 0 {
                    return;
                }
                last = now;
            }
        };
        settle().await;
        let idle = status_kib("VmRSS:");
        let started = Instant::now();
        let mut rv = 0u64;
        let burst = (count / 10).max(1);
        let mut kept = Vec::new();
        for b in 0..count.div_ceil(burst) {
            let range = b * burst..((b + 1) * burst).min(count);
            for i in range.clone() {
                rv += 1;
                let mut ing = ingress(i);
                ing.metadata.uid = Some(format!("uid-{i}"));
                ing.metadata.resource_version = Some(rv.to_string());
                server.live.lock().unwrap().insert(key(i));
                tx.send(watcher::Event::Apply(ing)).expect("running");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            for i in range {
                if i % 20 < 2 {
                    kept.push(i);
                    continue;
                }
                rv += 1;
                let mut ing = ingress(i);
                ing.metadata.uid = Some(format!("uid-{i}"));
                ing.metadata.resource_version = Some(rv.to_string());
                // The API server deletes first; the watch tells the controller afterwards.
                server.live.lock().unwrap().remove(&key(i));
                tx.send(watcher::Event::Delete(ing)).expect("running");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle().await;
        let churn = started.elapsed();
        let after = status_kib("VmRSS:");
        let warnings = server.warnings.lock().unwrap().clone();
        let about_deleted = *server.about_deleted.lock().unwrap();
        let remembered = ctx.current_findings().len();
        let cached = reader.len();
        // Now delete what is left.
        for i in &kept {
            rv += 1;
            let mut ing = ingress(*i);
            ing.metadata.uid = Some(format!("uid-{i}"));
            ing.metadata.resource_version = Some(rv.to_string());
            server.live.lock().unwrap().remove(&key(*i));
            tx.send(watcher::Event::Delete(ing)).expect("running");
        }
        settle().await;
        let empty = status_kib("VmRSS:");
        let peak = status_kib("VmHWM:");
        // A second round, every Ingress deleted: memory kept by the allocator is reused (RSS
        // stays), memory leaked per object would add up.
        for b in 0..count.div_ceil(burst) {
            let range = count + b * burst..count + ((b + 1) * burst).min(count);
            for i in range.clone() {
                rv += 1;
                let mut ing = ingress(i);
                ing.metadata.uid = Some(format!("uid-{i}"));
                ing.metadata.resource_version = Some(rv.to_string());
                server.live.lock().unwrap().insert(key(i));
                tx.send(watcher::Event::Apply(ing)).expect("running");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            for i in range {
                rv += 1;
                let mut ing = ingress(i);
                ing.metadata.uid = Some(format!("uid-{i}"));
                ing.metadata.resource_version = Some(rv.to_string());
                server.live.lock().unwrap().remove(&key(i));
                tx.send(watcher::Event::Delete(ing)).expect("running");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle().await;
        let second = status_kib("VmRSS:");
        let second_peak = status_kib("VmHWM:");

        let bad_kept: Vec<usize> = kept.iter().copied().filter(|i| i % 10 == 0).collect();
        let exactly_one = bad_kept
            .iter()
            .filter(|i| warnings.get(&key(**i)) == Some(&1))
            .count();
        println!(
            "ingresses created:     {count} (in bursts of {burst}), deleted: {}",
            count - kept.len()
        );
        println!(
            "left after the churn:  {} ({} with a finding; the controller remembers {remembered})",
            kept.len(),
            bad_kept.len(),
        );
        println!(
            "with exactly one Warning: {exactly_one} of {}",
            bad_kept.len()
        );
        println!(
            "Warnings about clean survivors: {}",
            kept.iter()
                .filter(|i| *i % 10 != 0 && warnings.contains_key(&key(**i)))
                .count()
        );
        println!(
            "Events about objects already deleted: {about_deleted} during the churn, {} in all",
            server.about_deleted.lock().unwrap()
        );
        println!(
            "queue: enqueued {}, dropped deleted {}, not_leader {}, rejected {}, retries {}",
            metrics.event_writes_queued_total.get(),
            metrics.event_drops("deleted"),
            metrics.event_drops("not_leader"),
            metrics.event_drops("rejected"),
            metrics.event_retries("throttled") + metrics.event_retries("error"),
        );
        println!(
            "cached objects:        {cached} after the churn, {} after the last deletions",
            reader.len()
        );
        println!("churn time:            {:.2} s", churn.as_secs_f64());
        println!("RSS idle:              {}", mib(idle));
        println!("RSS peak:              {} (VmHWM)", mib(peak));
        println!(
            "RSS after the churn:   {} ({} Ingresses cached)",
            mib(after),
            kept.len()
        );
        println!("RSS after deleting all: {}", mib(empty));
        println!(
            "RSS after a second round of {count}, all deleted: {} (peak {})",
            mib(second),
            mib(second_peak)
        );

        let _ = stop.send(());
        let _ = controller.await;
    });
}
