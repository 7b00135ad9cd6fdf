//! Memory and time of the controller's cache and reconcile path with 10,000 Ingresses, without
//! a cluster: generated Ingresses (rules, TLS, labels, a `last-applied-configuration`
//! annotation, one in ten with a bad `configuration-snippet`) go through the same watch-event
//! stream, trimming, reflector store, kube-runtime `Controller` and reconcile as in the
//! cluster; Events go to a counter instead of the API server.
//!
//! ```sh
//! cargo run --release --example controller_10k [-- COUNT]
//! ```
//!
//! Prints VmRSS and VmHWM from /proc/self/status and the time per Ingress.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::runtime::events::Event;
use kube::runtime::{reflector, watcher};
use snippet_guard::Settings;
use snippet_guard::k8s::controller::{
    ConfigSnapshot, Context, Metrics, Publish, ingress_controller, ingress_trigger,
    metrics::KindLabels,
};
use tokio::sync::watch;

#[path = "../benches/support/ingresses.rs"]
mod ingresses;
use ingresses::ingress;

/// The binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Default)]
struct CountingPublisher {
    events: AtomicU64,
}

impl Publish for CountingPublisher {
    fn publish<'a>(
        &'a self,
        _event: &'a Event,
        _regarding: &'a ObjectReference,
    ) -> BoxFuture<'a, Result<(), kube::Error>> {
        self.events.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
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

#[allow(
    clippy::cast_precision_loss,
    reason = "counts and KiB far below 2^52 are printed as floats"
)]
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
    let rss_start = status_kib("VmRSS:");
    runtime.block_on(async move {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("ingress-nginx-controller".into());
        cm.metadata.namespace = Some("ingress-nginx".into());
        cm.data = Some(
            [
                ("allow-snippet-annotations", "true"),
                ("annotations-risk-level", "Critical"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        );
        let (_config_tx, config_rx) = watch::channel(Arc::new(ConfigSnapshot::of(&[cm], &[])));
        let (_leader_tx, leader_rx) = watch::channel(true);
        let (_excluded_tx, excluded_rx) = watch::channel(Some(Arc::default()));
        let publisher = Arc::new(CountingPublisher::default());
        let metrics = Arc::new(Metrics::new());
        let ctx = Arc::new(Context::new(
            Settings::default(),
            publisher.clone(),
            config_rx,
            leader_rx,
            excluded_rx,
            metrics.clone(),
        ));

        // What a paged initial list looks like to the reflector: objects arrive one by one.
        let events = futures::stream::iter(
            std::iter::once(watcher::Event::Init)
                .chain((0..count).map(|i| watcher::Event::InitApply(ingress(i))))
                .chain(std::iter::once(watcher::Event::InitDone))
                .map(Ok),
        )
        .chain(futures::stream::pending());
        let (reader, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let trigger = ingress_trigger(events, writer, ctx.clone(), None, synced.clone());
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
        let deadline = Instant::now() + Duration::from_secs(600);
        while reconciles.get() < count as u64 {
            assert!(
                Instant::now() < deadline,
                "reconciles did not finish in 10 min"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        let rss = status_kib("VmRSS:");
        let hwm = status_kib("VmHWM:");
        let _ = stop.send(());
        let _ = controller.await;
        let findings = ctx.current_findings().len();
        println!("ingresses:            {count}");
        println!("cached objects:       {}", reader.len());
        println!("objects with findings {findings}");
        println!(
            "events published:     {}",
            publisher.events.load(Ordering::Relaxed)
        );
        println!("total time:           {:.2} s", elapsed.as_secs_f64());
        println!(
            "time per Ingress:     {:.1} µs (generate + trim + store + reconcile)",
            elapsed.as_secs_f64() * 1e6 / count as f64
        );
        println!("RSS at start:         {:.1} MiB", rss_start as f64 / 1024.0);
        println!(
            "RSS after:            {:.1} MiB (VmRSS)",
            rss as f64 / 1024.0
        );
        println!(
            "peak RSS:             {:.1} MiB (VmHWM)",
            hwm as f64 / 1024.0
        );
    });
}
