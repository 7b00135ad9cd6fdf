//! The controller's store and reconcile path on 10,000 generated Ingresses (criterion):
//!
//! - `store`: what the reflector does with a full initial list: trim each Ingress to what the
//!   rules read and apply it to a kube-runtime store;
//! - `reconcile`: `reconcile` on every Ingress of the store (the engine on the trimmed object,
//!   the findings reported; Events go to a counter instead of the API server), as on a resync.
//!
//! `cargo bench --bench controller`; `examples/controller_10k.rs` measures memory for the same
//! objects through the whole watch -> Controller pipeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::events::Event;
use kube::runtime::{reflector, watcher};
use snippet_guard::Settings;
use snippet_guard::k8s::controller::objects::trim_ingress;
use snippet_guard::k8s::controller::{ConfigSnapshot, Context, Metrics, Publish, reconcile};
use tokio::sync::watch;

#[path = "support/ingresses.rs"]
mod ingresses;

/// The allocator of the `snippet-guard` binary, so that the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COUNT: usize = 10_000;
const PREFIX: &str = "nginx.ingress.kubernetes.io";

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

fn trimmed(all: &[Ingress]) -> Vec<Ingress> {
    all.iter()
        .cloned()
        .map(|mut i| {
            trim_ingress(&mut i, PREFIX);
            i
        })
        .collect()
}

fn store(c: &mut Criterion) {
    let all: Vec<Ingress> = (0..COUNT).map(ingresses::ingress).collect();
    let mut g = c.benchmark_group("controller");
    g.throughput(Throughput::Elements(COUNT as u64));
    g.sample_size(20);
    g.bench_function("store 10k (trim + apply)", |b| {
        b.iter_batched(
            || all.clone(),
            |list| {
                let (reader, mut writer) = reflector::store::<Ingress>();
                writer.apply_watcher_event(&watcher::Event::Init);
                for mut ing in list {
                    trim_ingress(&mut ing, PREFIX);
                    writer.apply_watcher_event(&watcher::Event::InitApply(ing));
                }
                writer.apply_watcher_event(&watcher::Event::InitDone);
                assert_eq!(reader.len(), COUNT);
                reader
            },
            BatchSize::LargeInput,
        );
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
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
    let ctx = Arc::new(Context::new(
        Settings::default(),
        publisher.clone(),
        config_rx,
        leader_rx,
        excluded_rx,
        Arc::new(Metrics::new()),
    ));
    let store: Vec<Arc<Ingress>> = trimmed(&all).into_iter().map(Arc::new).collect();
    drop(all);
    g.bench_function("reconcile 10k", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for ing in &store {
                    reconcile(ing.clone(), ctx.clone())
                        .await
                        .expect("reconcile succeeds");
                }
                // The Events are written by the queue's writers: count them in, as before
                // the queue, when each reconcile wrote its own.
                ctx.queue.flush().await;
            });
        });
    });
    g.finish();
    // At least one Warning per bad Ingress (one in ten).
    assert!(publisher.events.load(Ordering::Relaxed) >= (COUNT / 10) as u64);
}

criterion_group!(benches, store);
criterion_main!(benches);
