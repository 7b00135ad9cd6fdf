//! Reconcile tests against a mocked API server.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::*;
use crate::k8s::fixtures::{
    ExpectedEvent, IngressExt, Scenario, controller_configmap, mock_client, timeout_after_1s,
};
use crate::k8s::leader::{Leadership, LeaseConfig};

const XFP: &str = "proxy_set_header X-Forwarded-Proto $scheme;\n";
const XFP_AND_REAL_IP: &str =
    "proxy_set_header X-Forwarded-Proto $scheme;\nproxy_set_header X-Real-IP $remote_addr;\n";
const CLEAN: &str = "more_set_headers \"X-Frame-Options: DENY\";\n";

fn warning(ns: &str, name: &str, reason: &str, action: &str, note_prefix: &str) -> ExpectedEvent {
    ExpectedEvent {
        namespace: ns.into(),
        type_: "Warning",
        reason: reason.into(),
        action: action.into(),
        note_prefix: note_prefix.into(),
        regarding_kind: "Ingress",
        regarding_name: name.into(),
    }
}

fn xfp_warning(ns: &str, name: &str, line: usize) -> ExpectedEvent {
    warning(
        ns,
        name,
        "RedundantForwardedProto",
        &format!("LintConfigurationSnippetLine{line}XForwardedProto"),
        "redundant-forwarded-proto: X-Forwarded-Proto is already set by ingress-nginx here",
    )
}

fn resolved(ns: &str, name: &str, kind: &'static str, previously: &str) -> ExpectedEvent {
    ExpectedEvent {
        namespace: ns.into(),
        type_: "Normal",
        reason: "FindingsResolved".into(),
        action: "Lint".into(),
        note_prefix: format!("snippet-guard: no findings left (previously: {previously})"),
        regarding_kind: kind,
        regarding_name: name.into(),
    }
}

fn no_config() -> ConfigSnapshot {
    ConfigSnapshot::of(&[], &[])
}

#[tokio::test]
async fn bad_ingress_publishes_one_warning_per_finding() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    let ing = Ingress::test("shop", "django-api").with_snippet(XFP_AND_REAL_IP);
    let server = verifier.spawn(vec![
        Scenario::EventPublished(xfp_warning("shop", "django-api", 1)),
        Scenario::EventPublished(warning(
            "shop",
            "django-api",
            "DuplicateControllerHeader",
            "LintConfigurationSnippetLine2XRealIP",
            "duplicate-controller-header: ",
        )),
        Scenario::NoCalls,
    ]);
    let action = reconcile(Arc::new(ing), ctx.clone())
        .await
        .expect("reconciled");
    assert_eq!(action, Action::requeue(ctx.reminder));
    timeout_after_1s(server).await.expect("scenario");
    ctx.queue.flush().await;
    assert_eq!(
        ctx.metrics
            .events_published("Warning", "RedundantForwardedProto"),
        1
    );
    assert_eq!(
        ctx.metrics.findings_of("redundant-forwarded-proto", "shop"),
        1
    );
    assert_eq!(
        ctx.metrics
            .findings_of("duplicate-controller-header", "shop"),
        1
    );
}

#[tokio::test]
async fn clean_ingress_publishes_nothing() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    let server = verifier.spawn(vec![Scenario::NoCalls]);
    let ing = Ingress::test("shop", "web").with_snippet(CLEAN);
    let action = reconcile(Arc::new(ing), ctx.clone())
        .await
        .expect("reconciled");
    assert_eq!(action, Action::await_change());
    timeout_after_1s(server).await.expect("scenario");
    assert!(ctx.current_findings().is_empty());
}

#[tokio::test]
async fn repeats_merge_into_a_series_and_a_fix_publishes_one_normal_event() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    let server = verifier.spawn(vec![
        Scenario::EventPublished(xfp_warning("shop", "django-api", 1)),
        Scenario::EventSeries(xfp_warning("shop", "django-api", 1), 2),
        Scenario::EventPublished(resolved(
            "shop",
            "django-api",
            "Ingress",
            "redundant-forwarded-proto",
        )),
        Scenario::NoCalls,
    ]);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    reconcile(bad.clone(), ctx.clone()).await.expect("first");
    reconcile(bad, ctx.clone()).await.expect("repeat");
    let fixed = Arc::new(Ingress::test("shop", "django-api").with_snippet(CLEAN));
    reconcile(fixed.clone(), ctx.clone()).await.expect("fixed");
    reconcile(fixed, ctx.clone())
        .await
        .expect("still clean: nothing more");
    timeout_after_1s(server).await.expect("scenario");
    ctx.queue.flush().await;
    assert_eq!(
        ctx.metrics.events_published("Normal", "FindingsResolved"),
        1
    );
    assert_eq!(
        ctx.metrics.findings_of("redundant-forwarded-proto", "shop"),
        0
    );
}

#[tokio::test]
async fn failed_event_write_is_retried_and_counted() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    let server = verifier.spawn(vec![
        Scenario::EventFails(xfp_warning("shop", "django-api", 1), 500),
        Scenario::EventFails(xfp_warning("shop", "django-api", 1), 503),
        Scenario::EventPublished(xfp_warning("shop", "django-api", 1)),
        Scenario::NoCalls,
    ]);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    reconcile(bad, ctx.clone())
        .await
        .expect("queued: the reconcile does not wait for the write");
    timeout_after_1s(server).await.expect("scenario");
    ctx.queue.flush().await;
    assert_eq!(ctx.metrics.event_failures_total(), 2);
    assert_eq!(ctx.metrics.event_retries("error"), 2);
    assert_eq!(ctx.metrics.event_retries("throttled"), 0);
    assert_eq!(
        ctx.metrics
            .events_published("Warning", "RedundantForwardedProto"),
        1
    );
    assert!(ctx.metrics.encode().contains(
        "event_publish_failures_total{reason=\"RedundantForwardedProto\",status=\"500\"} 1"
    ));
}

/// A write the API server refuses for what it is (422) is not sent again: dropped, counted and
/// logged; the reconcile is not failed (it would only produce the same Event).
#[tokio::test]
async fn a_refused_event_write_is_dropped_and_counted_without_failing_the_reconcile() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    let e = xfp_warning("shop", "django-api", 1);
    let server = verifier.spawn(vec![Scenario::EventFails(e, 422), Scenario::NoCalls]);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    reconcile(bad, ctx.clone()).await.expect("reconciled");
    timeout_after_1s(server).await.expect("scenario");
    ctx.queue.flush().await;
    assert_eq!(ctx.metrics.event_failures_total(), 1);
    assert_eq!(ctx.metrics.event_drops("rejected"), 1);
    assert_eq!(ctx.metrics.event_retries("error"), 0);
    assert_eq!(ctx.current_findings().len(), 1);
}

/// Writes about an object that is deleted before they are sent are dropped (counted as
/// `deleted`), so no Event is written about an object that no longer exists.
#[tokio::test]
async fn writes_for_a_forgotten_object_are_dropped() {
    let (ctx, verifier, _levers) = Context::test(no_config());
    // The test runtime has one thread: the writers get no turn before `forget`.
    let server = verifier.spawn(vec![Scenario::NoCalls]);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP_AND_REAL_IP));
    reconcile(bad.clone(), ctx.clone())
        .await
        .expect("reconciled");
    ctx.forget(&objects::ingress_ref(&bad));
    timeout_after_1s(server).await.expect("scenario");
    ctx.queue.flush().await;
    assert_eq!(ctx.metrics.event_drops("deleted"), 2);
    assert_eq!(ctx.queue.backlog(), 0);
}

#[tokio::test]
async fn configmap_findings_are_published_on_the_configmap() {
    let cm = controller_configmap(&[
        ("allow-snippet-annotations", "true"),
        ("annotations-risk-level", "Critical"),
        (
            "location-snippet",
            "proxy_set_header X-Forwarded-Proto https;\n",
        ),
    ]);
    let (ctx, verifier, levers) = Context::test(ConfigSnapshot::of(&[cm], &[]));
    let on_cm = ExpectedEvent {
        namespace: "ingress-nginx".into(),
        type_: "Warning",
        reason: "RedundantForwardedProto".into(),
        action: "LintLocationSnippetLine1XForwardedProto".into(),
        note_prefix: "redundant-forwarded-proto: ".into(),
        regarding_kind: "ConfigMap",
        regarding_name: "ingress-nginx-controller".into(),
    };
    let server = verifier.spawn(vec![
        Scenario::EventPublished(on_cm),
        Scenario::EventPublished(resolved(
            "ingress-nginx",
            "ingress-nginx-controller",
            "ConfigMap",
            "redundant-forwarded-proto",
        )),
        Scenario::NoCalls,
    ]);
    reconcile_config(&ctx).await.expect("reconciled");
    let fixed = controller_configmap(&[("allow-snippet-annotations", "true")]);
    levers
        .config
        .send_replace(Arc::new(ConfigSnapshot::of(&[fixed], &[])));
    reconcile_config(&ctx).await.expect("reconciled");
    timeout_after_1s(server).await.expect("scenario");
}

/// Drive the real Controller: a watch stream we feed by hand, the trimming reflector, and
/// `reconcile_all_on` the configuration.
#[tokio::test]
async fn configmap_change_rechecks_the_ingresses_it_affects() {
    let allow = controller_configmap(&[
        ("allow-snippet-annotations", "true"),
        ("annotations-risk-level", "Critical"),
    ]);
    let (ctx, verifier, levers) = Context::test(ConfigSnapshot::of(&[allow], &[]));
    let (tx, rx) = mpsc::unbounded_channel::<watcher::Event<Ingress>>();
    let events =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    let (reader, writer) = reflector::store();
    let synced = Arc::new(AtomicBool::new(false));
    let trigger = ingress_trigger(events, writer, ctx.clone(), None, synced.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let controller = tokio::spawn(
        ingress_controller(trigger, reader.clone(), ctx.clone(), shutdown)
            .for_each(|()| std::future::ready(())),
    );

    // A bad Ingress and one without snippets arrive through the initial list.
    let bad = Ingress::test("shop", "django-api").with_snippet(XFP);
    let clean = Ingress::test("shop", "web");
    tx.send(watcher::Event::Init).unwrap();
    tx.send(watcher::Event::InitApply(bad)).unwrap();
    tx.send(watcher::Event::InitApply(clean)).unwrap();
    tx.send(watcher::Event::InitDone).unwrap();
    let verifier = verifier
        .run(vec![
            Scenario::EventPublished(xfp_warning("shop", "django-api", 1)),
            Scenario::NoCalls,
        ])
        .await;
    assert!(synced.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(reader.len(), 2);

    // The controller ConfigMap turns annotation snippets off: ingress-nginx no longer renders
    // the snippet. The duplicate is gone, but the snippet is ignored (and would send the header
    // twice once the gate opens): one Warning says so; the other Ingress stays silent.
    let deny = controller_configmap(&[("allow-snippet-annotations", "false")]);
    levers
        .config
        .send_replace(Arc::new(ConfigSnapshot::of(&[deny], &[])));
    verifier
        .run(vec![
            Scenario::EventPublished(warning(
                "shop",
                "django-api",
                "IgnoredSnippet",
                "LintConfigurationSnippetLine1",
                "ignored-snippet: this snippet is not rendered",
            )),
            Scenario::NoCalls,
        ])
        .await;
    let _ = stop.send(());
    timeout_after_1s(controller)
        .await
        .expect("controller stopped");
}

#[tokio::test]
async fn trimmed_store_keeps_only_what_the_rules_read() {
    let (ctx, _verifier, _levers) = Context::test(no_config());
    let mut ing = Ingress::test("shop", "web").with_snippet(XFP);
    ing.metadata.annotations.get_or_insert_default().insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        "x".repeat(10_000),
    );
    let events = futures::stream::iter([
        Ok(watcher::Event::Init),
        Ok(watcher::Event::InitApply(ing)),
        Ok(watcher::Event::InitDone),
    ]);
    let (reader, writer) = reflector::store();
    let trigger = ingress_trigger(events, writer, ctx, None, Arc::new(AtomicBool::new(false)));
    let triggered: Vec<_> = trigger.collect().await;
    assert_eq!(triggered.len(), 1);
    let stored = reader.state();
    let annotations = stored[0].metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["nginx.ingress.kubernetes.io/configuration-snippet"]
    );
}

#[tokio::test]
async fn excluded_namespace_is_not_reported() {
    let (ctx, verifier, levers) = Context::test(no_config());
    levers
        .excluded
        .send_replace(Some(Arc::new(["shop".to_string()].into())));
    let server = verifier.spawn(vec![Scenario::NoCalls]);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    reconcile(bad, ctx).await.expect("reconciled");
    timeout_after_1s(server).await.expect("scenario");
}

/// A replica that finds the Lease held by another publishes nothing.
#[tokio::test]
async fn non_leader_publishes_nothing() {
    let (client, handle) = mock_client();
    let verifier = crate::k8s::fixtures::ApiServerVerifier(handle);
    let lease = || Scenario::LeaseHeldBy {
        namespace: "snippet-guard".into(),
        name: "snippet-guard-controller".into(),
        holder: "other-replica".into(),
    };
    // The manager reads the Lease when it starts and again before deciding; then it sleeps
    // until the Lease could expire. Nothing else may reach the API server.
    let server = verifier.spawn(vec![lease(), lease(), Scenario::NoCalls]);
    let metrics = Arc::new(Metrics::new());
    let leadership = Leadership::start(
        client.clone(),
        LeaseConfig {
            namespace: "snippet-guard".into(),
            name: "snippet-guard-controller".into(),
            identity: "this-replica".into(),
            duration: 15,
            grace: 5,
        },
        metrics.clone(),
    );
    let (ctx, _levers) = Context::test_with(client, no_config(), false);
    let mut ctx = Arc::try_unwrap(ctx).expect("only owner");
    ctx.leader = leadership.receiver();
    let ctx = Arc::new(ctx);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    let action = reconcile(bad, ctx.clone()).await.expect("reconciled");
    assert_eq!(action, Action::await_change());
    reconcile_config(&ctx).await.expect("nothing to do");
    timeout_after_1s(server).await.expect("scenario");
    assert!(!ctx.is_leader());
    assert_eq!(metrics.leader.get(), 0);
    assert!(ctx.current_findings().is_empty());
}

/// The API server's side of a Lease: GET, POST and PATCH (apply or merge) on one object.
#[derive(Debug, Default)]
struct LeaseState {
    holder: Option<String>,
    renew: Option<String>,
    duration: Option<i64>,
    transitions: i64,
}

impl LeaseState {
    fn json(&self) -> serde_json::Value {
        let mut spec = serde_json::Map::new();
        if let Some(h) = &self.holder {
            spec.insert("holderIdentity".into(), h.clone().into());
        }
        if let Some(r) = &self.renew {
            spec.insert("renewTime".into(), r.clone().into());
            spec.insert("acquireTime".into(), r.clone().into());
        }
        if let Some(d) = self.duration {
            spec.insert("leaseDurationSeconds".into(), d.into());
        }
        spec.insert("leaseTransitions".into(), self.transitions.into());
        serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "snippet-guard-controller", "namespace": "snippet-guard", "resourceVersion": "1"},
            "spec": spec,
        })
    }

    fn patch(&mut self, body: &serde_json::Value) {
        let Some(spec) = body.get("spec").and_then(|s| s.as_object()) else {
            return;
        };
        if let Some(h) = spec.get("holderIdentity") {
            self.holder = h.as_str().map(str::to_string);
        }
        if let Some(r) = spec.get("renewTime") {
            self.renew = r.as_str().map(str::to_string);
        }
        if let Some(d) = spec.get("leaseDurationSeconds") {
            self.duration = d.as_i64();
        }
        if let Some(t) = spec
            .get("leaseTransitions")
            .and_then(serde_json::Value::as_i64)
        {
            self.transitions = t;
        }
    }
}

/// A standby replica takes over a Lease whose holder stopped renewing it, then publishes.
#[tokio::test]
async fn standby_takes_over_an_expired_lease_then_publishes() {
    use http::{Method, Response};
    use kube::client::Body;

    let (client, mut handle) = mock_client();
    let stale = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(60))
        .unwrap();
    let mut lease = LeaseState {
        holder: Some("old-leader".into()),
        renew: Some(stale.to_string()),
        duration: Some(15),
        transitions: 1,
    };
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(Method, String, serde_json::Value)>();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let body = request.into_body().collect_bytes().await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let answer = if path.contains("/leases") {
                if method == Method::PATCH {
                    lease.patch(&json);
                }
                lease.json()
            } else {
                json.clone()
            };
            let _ = seen_tx.send((method, path, json));
            send.send_response(
                Response::builder()
                    .status(200)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    let metrics = Arc::new(Metrics::new());
    let leadership = Leadership::start(
        client.clone(),
        LeaseConfig {
            namespace: "snippet-guard".into(),
            name: "snippet-guard-controller".into(),
            identity: "this-replica".into(),
            duration: 15,
            grace: 5,
        },
        metrics.clone(),
    );
    let mut leading = leadership.receiver();
    // The expired Lease is released and taken (a random pause of at most 1 s in between).
    tokio::time::timeout(std::time::Duration::from_secs(5), leading.wait_for(|l| *l))
        .await
        .expect("took over within the timeout")
        .expect("election running");
    assert_eq!(metrics.leader.get(), 1);

    let (ctx, _levers) = Context::test_with(client, no_config(), false);
    let mut ctx = Arc::try_unwrap(ctx).expect("only owner");
    ctx.leader = leadership.receiver();
    let ctx = Arc::new(ctx);
    let bad = Arc::new(Ingress::test("shop", "django-api").with_snippet(XFP));
    reconcile(bad, ctx.clone()).await.expect("reconciled");
    tokio::time::timeout(std::time::Duration::from_secs(5), ctx.queue.flush())
        .await
        .expect("the Event is written");
    let mut lease_patches = 0;
    let mut event = None;
    while let Ok((method, path, body)) = seen_rx.try_recv() {
        if path.contains("/leases") && method == Method::PATCH {
            lease_patches += 1;
        }
        if path == "/apis/events.k8s.io/v1/namespaces/shop/events" {
            assert_eq!(method, Method::POST);
            event = Some(body);
        }
    }
    assert!(lease_patches >= 2, "released and took the Lease");
    let event = event.expect("the new leader published");
    assert_eq!(event["reason"], "RedundantForwardedProto");
    assert_eq!(event["reportingInstance"], "snippet-guard-test");
    drop(leadership);
    server.abort();
}

/// The controller ConfigMap's snippets are parsed once per configuration snapshot, not once
/// per Ingress reconciled.
#[test]
fn the_controller_configmap_is_parsed_once_per_change_not_per_ingress() {
    use crate::nginx::parser::parses_on_this_thread;
    let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
    cm.metadata.name = Some("ingress-nginx-controller".into());
    cm.metadata.namespace = Some("ingress-nginx".into());
    cm.data = Some(
        [
            (
                "location-snippet".to_string(),
                "proxy_set_header X-Tenant platform;\n".to_string(),
            ),
            ("allow-snippet-annotations".to_string(), "true".to_string()),
            ("annotations-risk-level".to_string(), "Critical".to_string()),
        ]
        .into(),
    );
    let settings = Settings::default();
    let config = ConfigSnapshot::of(&[cm], &[]);
    let ingresses: Vec<Ingress> = (0..40)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("web-{i}"), "namespace": "shop", "annotations": {
                    "nginx.ingress.kubernetes.io/configuration-snippet":
                        "proxy_set_header X-Tenant blue;\n"}},
                "spec": {"ingressClassName": "nginx"}
            }))
            .unwrap()
        })
        .collect();
    let before = parses_on_this_thread();
    let first = judge_ingress(&config, &ingresses[0], &settings).unwrap();
    // The ConfigMap's location-snippet (once, building the context) and the Ingress's own.
    assert_eq!(parses_on_this_thread() - before, 2);
    assert_eq!(first.len(), 1, "{first:?}");
    let before = parses_on_this_thread();
    for ing in &ingresses[1..] {
        let found = judge_ingress(&config, ing, &settings).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule.id, "duplicate-snippet-header");
    }
    assert_eq!(parses_on_this_thread() - before, 39);
    // A new snapshot (a change) builds its context again: the ConfigMap is parsed once more.
    let changed = ConfigSnapshot::of(&[], &[]);
    let before = parses_on_this_thread();
    judge_ingress(&changed, &ingresses[0], &settings).unwrap();
    assert_eq!(parses_on_this_thread() - before, 1);
}
