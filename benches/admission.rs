//! Admission latency of the webhook handler (`review`: body -> engine -> response) on captured
//! `AdmissionReview`s, as percentiles: criterion reports means, and a webhook is judged by its
//! tail. Each case is timed call by call (after a warm-up) in several rounds; the table shows
//! the median over rounds of each round's p50, p99 and max.
//!
//! `cargo bench --bench admission` (under `cargo test` it runs each case once, as a smoke test).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use snippet_guard::Settings;
use snippet_guard::k8s::webhook::{ContextObject, Mode, Policy, review};

/// The allocator of the `snippet-guard` binary, so that the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;
const CALLS: usize = 5_000;

fn fixture(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    std::fs::read(root.join(name)).expect("fixture")
}

fn context() -> Vec<ContextObject> {
    ["ingress-nginx-controller", "custom-headers"]
        .iter()
        .map(|n| {
            let cm: ConfigMap =
                serde_json::from_slice(&fixture(&format!("context/{n}.json"))).expect("ConfigMap");
            ContextObject::from_configmap(&cm)
        })
        .collect()
}

/// `per_mille`: 500 for p50, 990 for p99.
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if benchmarking {
        (ROUNDS, CALLS)
    } else {
        (1, 1)
    };
    let policy = Policy {
        mode: Mode::Enforce,
        settings: Settings {
            controller_configmaps: vec!["ingress-nginx/ingress-nginx-controller".into()],
            ..Settings::default()
        },
        only_new_findings: false,
    };
    let only_new = Policy {
        only_new_findings: true,
        ..policy.clone()
    };
    let ctx = context();
    let cases: [(&str, &Policy, &[ContextObject], &str); 5] = [
        (
            "Ingress CREATE, denied (original report)",
            &policy,
            &[],
            "create-original-report.json",
        ),
        (
            "Ingress CREATE, allowed (fixed)",
            &policy,
            &[],
            "create-fixed.json",
        ),
        (
            "Ingress CREATE, denied, with controller ConfigMaps",
            &policy,
            &ctx,
            "create-original-report.json",
        ),
        (
            "Ingress UPDATE, --only-new-findings (judged twice)",
            &only_new,
            &[],
            "update-same-finding.json",
        ),
        ("Pod CREATE, skipped", &policy, &[], "create-pod.json"),
    ];
    if benchmarking {
        println!(
            "admission handler latency, {calls} calls x {rounds} rounds, median of rounds (µs)"
        );
        println!(
            "{:<54} {:>7} {:>8} {:>8} {:>8}",
            "case", "bytes", "p50", "p99", "max"
        );
    }
    for (name, policy, ctx, file) in cases {
        let body = fixture(file);
        // Built once per change of the ConfigMap cache in the server, not per review.
        let ctx = &snippet_guard::k8s::webhook::context(policy, ctx);
        let (mut p50, mut p99, mut max) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            for _ in 0..calls.min(500) {
                black_box(review(policy, ctx, black_box(&body)).expect("a valid review"));
            }
            let mut times = Vec::with_capacity(calls);
            for _ in 0..calls {
                let start = Instant::now();
                black_box(review(policy, ctx, black_box(&body)).expect("a valid review"));
                times.push(start.elapsed());
            }
            times.sort();
            p50.push(percentile(&times, 500));
            p99.push(percentile(&times, 990));
            max.push(*times.last().expect("timed"));
        }
        if benchmarking {
            println!(
                "{name:<54} {:>7} {:>8} {:>8} {:>8}",
                body.len(),
                micros(median(p50)),
                micros(median(p99)),
                micros(median(max))
            );
        } else {
            println!("Testing {name}: ok");
        }
    }
}
