//! Leader handover against a mocked API server: the new leader reads the state the previous
//! one saved, publishes no Warning already published, sends the `Normal` Event for an object
//! fixed meanwhile, forgets objects deleted meanwhile, and saves its own state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::networking::v1::Ingress;
use kube::client::Body;
use kube::runtime::reflector;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::handover::{Entry, Handover, Scope, StateStore, decode, digest, encode};
use super::*;
use crate::k8s::fixtures::{ApiServerHandle, IngressExt, mock_client};

const XFP: &str = "proxy_set_header X-Forwarded-Proto $scheme;\n";
const CLEAN: &str = "more_set_headers \"X-Frame-Options: DENY\";\n";
const STATE_PATH: &str = "/api/v1/namespaces/sg/configmaps/sg-controller-state";

/// What the fake API server saw.
#[derive(Debug, Default)]
struct Seen {
    /// `type reason name` of each Event written.
    events: Vec<String>,
    /// Each state saved.
    saved: Vec<Vec<Entry>>,
    /// resourceVersion of each state update received.
    save_versions: Vec<String>,
}

fn state_configmap(json: Option<&str>, rv: &str) -> serde_json::Value {
    let mut cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "sg-controller-state", "namespace": "sg", "resourceVersion": rv}
    });
    if let Some(j) = json {
        cm["data"] = serde_json::json!({ handover::STATE_KEY: j });
    }
    cm
}

/// Answers GET/PUT of the state ConfigMap (`state`: what a GET returns) and Event writes.
fn serve(
    mut handle: ApiServerHandle,
    state: Option<String>,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut current = state_configmap(state.as_deref(), "7");
        while let Some((request, send)) = handle.next_request().await {
            let request: Request<Body> = request;
            let (method, path) = (request.method().clone(), request.uri().path().to_string());
            let body = request.into_body().collect_bytes().await.unwrap();
            let response = match (&method, path.as_str()) {
                (&Method::GET, STATE_PATH) => serde_json::to_vec(&current).unwrap(),
                (&Method::PUT, STATE_PATH) => {
                    let cm: ConfigMap = serde_json::from_slice(&body).unwrap();
                    let mut seen = seen.lock().unwrap();
                    seen.save_versions
                        .push(cm.metadata.resource_version.clone().unwrap_or_default());
                    let json = &cm.data.as_ref().unwrap()[handover::STATE_KEY];
                    seen.saved.push(decode(json).unwrap());
                    current = serde_json::to_value(&cm).unwrap();
                    current["metadata"]["resourceVersion"] = serde_json::json!("8");
                    serde_json::to_vec(&current).unwrap()
                }
                (&Method::POST, p) if p.starts_with("/apis/events.k8s.io/v1/namespaces/") => {
                    let event: K8sEvent = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().events.push(format!(
                        "{} {} {}",
                        event.type_.as_deref().unwrap_or_default(),
                        event.reason.as_deref().unwrap_or_default(),
                        event
                            .regarding
                            .as_ref()
                            .and_then(|r| r.name.clone())
                            .unwrap_or_default()
                    ));
                    body.to_vec()
                }
                (m, p) => panic!("unexpected call {m} {p}"),
            };
            send.send_response(
                Response::builder()
                    .status(if method == Method::POST { 201 } else { 200 })
                    .body(Body::from(response))
                    .unwrap(),
            );
        }
    })
}

fn entry(ing: &Ingress, published_at: u64) -> Entry {
    let findings = judge_ingress(&ConfigSnapshot::of(&[], &[]), ing, &Settings::default()).unwrap();
    let events: Vec<_> = findings
        .iter()
        .map(crate::k8s::events::finding_event)
        .collect();
    let key = objects::ingress_ref(ing);
    Entry {
        api_version: key.api_version,
        kind: key.kind,
        namespace: key.namespace,
        name: key.name,
        rules: findings.iter().map(|d| d.rule.id.to_string()).collect(),
        digest: format!("{:016x}", digest(&events)),
        published_at,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The previous leader's state: `still-bad` and `fixed` had a finding, published a minute ago;
/// `deleted` too, but it was deleted during the handover.
fn previous_state() -> String {
    let bad = |name: &str| Ingress::test("shop", name).with_snippet(XFP);
    let minute_ago = now_secs() - 60;
    encode(
        vec![
            entry(&bad("still-bad"), minute_ago),
            entry(&bad("fixed"), minute_ago),
            entry(&bad("deleted"), minute_ago),
        ],
        handover::MAX_STATE_BYTES,
    )
    .0
}

struct Run {
    ctx: Arc<Context>,
    seen: Arc<Mutex<Seen>>,
    lease: watch::Sender<bool>,
    handover: Handover,
    /// What the Ingress watch holds now.
    ingresses: Vec<Arc<Ingress>>,
}

/// A standby replica over the fake API server, with the Ingresses of today in its listed store.
fn standby(state: Option<String>, use_state: bool) -> Run {
    let (client, handle) = mock_client();
    let seen = Arc::new(Mutex::new(Seen::default()));
    serve(handle, state, seen.clone());
    let (ctx, levers) = Context::test_with(client.clone(), ConfigSnapshot::of(&[], &[]), false);
    let ingresses: Vec<Arc<Ingress>> = vec![
        Arc::new(Ingress::test("shop", "still-bad").with_snippet(XFP)),
        Arc::new(Ingress::test("shop", "fixed").with_snippet(CLEAN)),
        Arc::new(Ingress::test("shop", "new-bad").with_snippet(XFP)),
    ];
    let (reader, mut writer) = reflector::store::<Ingress>();
    for ing in &ingresses {
        writer.apply_watcher_event(&watcher::Event::Apply((**ing).clone()));
    }
    ctx.add_scope(Scope {
        namespace: None,
        store: reader,
        synced: Arc::new(AtomicBool::new(true)),
    });
    let (lease, lease_rx) = watch::channel(false);
    let handover = Handover::start(
        ctx.clone(),
        lease_rx,
        levers.leader,
        use_state.then(|| StateStore::new(client, "sg", "sg-controller-state")),
        Duration::from_millis(50),
    );
    Run {
        ctx,
        seen,
        lease,
        handover,
        ingresses,
    }
}

/// Take the Lease and re-check everything, as gaining the Lease does.
async fn take_over(run: &Run) {
    let mut leading = run.ctx.leader.clone();
    run.lease.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| *l))
        .await
        .expect("leads within 5 s")
        .unwrap();
    for ing in &run.ingresses {
        reconcile(ing.clone(), run.ctx.clone())
            .await
            .expect("reconciled");
    }
    // The Event queue writes them.
    tokio::time::timeout(Duration::from_secs(5), run.ctx.queue.flush())
        .await
        .expect("the Events are written within 5 s");
}

fn events(run: &Run) -> Vec<String> {
    let mut e = run.seen.lock().unwrap().events.clone();
    e.sort();
    e
}

#[tokio::test]
async fn the_new_leader_publishes_no_duplicate_and_the_normal_event_of_a_fix_made_meanwhile() {
    let run = standby(Some(previous_state()), true);
    take_over(&run).await;
    assert_eq!(
        events(&run),
        [
            "Normal FindingsResolved fixed",
            "Warning RedundantForwardedProto new-bad",
        ]
    );
    let findings: Vec<String> = run
        .ctx
        .current_findings()
        .keys()
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(findings, ["new-bad", "still-bad"]); // `deleted` forgotten without an Event
    // The inherited Warning is re-published when the previous leader's reminder is due,
    // not a full reminder after the handover.
    let key = objects::ingress_ref(&run.ingresses[0]);
    let left = run.ctx.reminder_for(&key);
    assert!(
        left <= run.ctx.reminder.saturating_sub(Duration::from_secs(59)),
        "{left:?}"
    );

    // It saves its own state, with the resourceVersion it read.
    tokio::time::timeout(Duration::from_secs(5), async {
        // A save may come between two reconciles: wait for the one after both.
        let done = |s: &Vec<Entry>| {
            let mut names: Vec<&str> = s.iter().map(|e| e.name.as_str()).collect();
            names.sort_unstable();
            names == ["new-bad", "still-bad"]
        };
        while !run.seen.lock().unwrap().saved.last().is_some_and(done) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("saved within 5 s");
    let mut saved: Vec<(String, u64)> = {
        let seen = run.seen.lock().unwrap();
        assert_eq!(seen.save_versions[0], "7");
        seen.saved
            .last()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.published_at))
            .collect()
    };
    saved.sort();
    let minute_ago = now_secs() - 60;
    assert_eq!(saved[0].0, "new-bad");
    assert!(saved[0].1 >= minute_ago + 59);
    assert_eq!(saved[1].0, "still-bad");
    assert!(saved[1].1 <= minute_ago + 1, "keeps when it was published");
    run.handover.stop().await;
}

#[tokio::test]
async fn without_the_state_the_new_leader_publishes_again_and_misses_the_fix() {
    // The same handover without the state ConfigMap: what the state is for.
    let run = standby(Some(previous_state()), false);
    take_over(&run).await;
    assert_eq!(
        events(&run),
        [
            "Warning RedundantForwardedProto new-bad",
            "Warning RedundantForwardedProto still-bad",
        ]
    );
    run.handover.stop().await;
}

#[tokio::test]
async fn a_changed_finding_or_a_stale_state_is_published_again() {
    // still-bad's finding moved to another line: other Events, so they are published.
    let moved = Ingress::test("shop", "still-bad").with_snippet(&format!("# a comment\n{XFP}"));
    let old = entry(
        &Ingress::test("shop", "still-bad").with_snippet(XFP),
        now_secs() - 60,
    );
    assert_ne!(entry(&moved, 0).digest, old.digest);
    let stale = entry(
        &Ingress::test("shop", "new-bad").with_snippet(XFP),
        now_secs() - 3600,
    );
    let saved_state = encode(vec![old, stale], handover::MAX_STATE_BYTES).0;
    let mut run = standby(Some(saved_state), true);
    run.ingresses = vec![Arc::new(moved), run.ingresses[2].clone()];
    take_over(&run).await;
    assert_eq!(
        events(&run),
        [
            "Warning RedundantForwardedProto new-bad",
            "Warning RedundantForwardedProto still-bad",
        ]
    );
    run.handover.stop().await;
}

#[tokio::test]
async fn losing_the_lease_stops_reporting_at_once() {
    let run = standby(None, true);
    take_over(&run).await;
    run.lease.send_replace(false);
    let mut leading = run.ctx.leader.clone();
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| !*l))
        .await
        .expect("stops leading")
        .unwrap();
    run.handover.stop().await;
}

#[test]
fn the_state_keeps_the_newest_entries_that_fit() {
    let e = |name: &str, at: u64| Entry {
        api_version: "networking.k8s.io/v1".into(),
        kind: "Ingress".into(),
        namespace: Some("shop".into()),
        name: name.into(),
        rules: vec!["redundant-forwarded-proto".into()],
        digest: "0123456789abcdef".into(),
        published_at: at,
    };
    let all = vec![e("a", 1), e("b", 3), e("c", 2)];
    let (json, dropped) = encode(all.clone(), 10_000);
    assert_eq!(dropped, 0);
    assert_eq!(decode(&json).unwrap().len(), 3);
    let one_size = encode(vec![e("b", 3)], 10_000).0.len();
    let (json, dropped) = encode(all, one_size + 10);
    assert_eq!(dropped, 2);
    assert_eq!(decode(&json).unwrap(), [e("b", 3)]);
    assert!(
        decode("{\"version\":2,\"objects\":[]}")
            .unwrap_err()
            .contains("version 2")
    );
    assert!(decode("not json").is_err());
}
