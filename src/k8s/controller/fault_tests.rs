//! Faults on the Ingress watch: the product's own wiring ([`run::ingress_scope`]: watcher ->
//! trimming reflector -> Controller -> Events) against a scripted API server that drops the
//! watch, answers 410 Gone and fails LISTs with 500s. Each finding must reach the API server
//! exactly once: none lost during the outage, none published again after the re-list.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::networking::v1::Ingress;
use kube::client::Body;
use kube::runtime::utils::Backoff;
use tokio::sync::watch;
use tower_test::mock::SendResponse;

use super::*;
use crate::k8s::fixtures::{ApiServerHandle, IngressExt, mock_client};

const XFP: &str = "proxy_set_header X-Forwarded-Proto $scheme;\n";
const CLEAN: &str = "more_set_headers \"X-Frame-Options: DENY\";\n";
const XFP_AND_REAL_IP: &str =
    "proxy_set_header X-Forwarded-Proto $scheme;\nproxy_set_header X-Real-IP $remote_addr;\n";

const INGRESSES: &str = "/apis/networking.k8s.io/v1/ingresses";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/";

/// How long a wait for the controller may take before the test fails (it takes milliseconds).
const PATIENCE: Duration = Duration::from_secs(5);
/// How long nothing may happen for the controller to count as done.
const QUIET: Duration = Duration::from_millis(300);

/// One step of the API server's script for the Ingress list/watch.
#[derive(Debug)]
enum Step {
    /// The next Ingress request must be a LIST; answer it so.
    List(Reply),
    /// The next Ingress request must be a WATCH from this resourceVersion; answer it so.
    Watch(&'static str, Reply),
    /// Leave the next Ingress request waiting until this many Event writes have arrived (so
    /// the order of watch events and reconciles is fixed).
    AwaitEvents(usize),
}

#[derive(Debug)]
enum Reply {
    /// 200 with these Ingresses and this list resourceVersion.
    Items(&'static str, Vec<Ingress>),
    /// 200 with these watch events; then the body ends: the connection dropped.
    Lines(Vec<serde_json::Value>),
    /// This HTTP status with a `Status` body.
    Status(u16),
    /// The connection fails before any response.
    Reset,
    /// Never answered: a healthy watch with nothing to say.
    Hold,
}

/// One Event write the API server received.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Published {
    method: Method,
    type_: String,
    reason: String,
    /// `namespace/name` of the object the Event is about.
    regarding: String,
}

impl Published {
    fn new(method: &Method, type_: &str, reason: &str, regarding: &str) -> Self {
        Self {
            method: method.clone(),
            type_: type_.into(),
            reason: reason.into(),
            regarding: regarding.into(),
        }
    }
}

fn xfp_posted(regarding: &str) -> Published {
    Published::new(
        &Method::POST,
        "Warning",
        "RedundantForwardedProto",
        regarding,
    )
}

fn resolved_posted(regarding: &str) -> Published {
    Published::new(&Method::POST, "Normal", "FindingsResolved", regarding)
}

fn sorted(events: &[Published]) -> Vec<Published> {
    let mut events = events.to_vec();
    events.sort();
    events
}

/// What the mocked API server has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// Script steps done.
    steps: usize,
    /// Ingress requests in order: `LIST` or `WATCH <resourceVersion>`.
    requests: Vec<String>,
    /// Event writes in order.
    events: Vec<Published>,
    /// Departures from the script; the server stops at the first.
    failures: Vec<String>,
}

/// The API server's side: plays `script` for the Ingress list/watch, accepts every Event
/// write (201 for a POST, 200 for a series PATCH) and records everything in `seen`.
async fn serve(mut handle: ApiServerHandle, script: Vec<Step>, seen: watch::Sender<Seen>) {
    let mut script: VecDeque<Step> = script.into();
    let mut parked: VecDeque<(Request<Body>, SendResponse<Response<Body>>)> = VecDeque::new();
    // Watches left unanswered stay open as long as the server runs.
    let mut held = Vec::new();
    let fail = |message: String| seen.send_modify(|s| s.failures.push(message));
    loop {
        loop {
            match script.front() {
                Some(Step::AwaitEvents(n)) if seen.borrow().events.len() >= *n => {}
                Some(Step::List(_) | Step::Watch(..)) if !parked.is_empty() => {
                    let (request, send) = parked.pop_front().expect("not empty");
                    let step = script.pop_front().expect("not empty");
                    match answer(step, &request) {
                        Ok(Answer::Respond(response)) => send.send_response(response),
                        Ok(Answer::Reset) => send.send_error("connection reset by peer"),
                        Ok(Answer::Hold) => held.push(send),
                        Err(message) => return fail(message),
                    }
                    seen.send_modify(|s| s.steps += 1);
                    continue;
                }
                _ => break,
            }
            script.pop_front();
            seen.send_modify(|s| s.steps += 1);
        }
        let Some((request, send)) = handle.next_request().await else {
            return;
        };
        let path = request.uri().path().to_string();
        if path.starts_with(EVENTS) {
            match event_write(request).await {
                Ok((published, response)) => {
                    send.send_response(response);
                    seen.send_modify(|s| s.events.push(published));
                }
                Err(message) => return fail(message),
            }
        } else if path == INGRESSES {
            let query = request.uri().query().unwrap_or_default();
            let what = if is_watch(query) {
                format!(
                    "WATCH {}",
                    param(query, "resourceVersion").unwrap_or_default()
                )
            } else {
                "LIST".to_string()
            };
            seen.send_modify(|s| s.requests.push(what.clone()));
            if script.is_empty() {
                return fail(format!("{what} after the end of the script"));
            }
            parked.push_back((request, send));
        } else {
            return fail(format!(
                "unexpected call {} {}",
                request.method(),
                request.uri()
            ));
        }
    }
}

fn is_watch(query: &str) -> bool {
    param(query, "watch") == Some("true")
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[derive(Debug)]
enum Answer {
    Respond(Response<Body>),
    Reset,
    Hold,
}

/// What to do with an Ingress request; `Err` when it is not the one the step expects.
fn answer(step: Step, request: &Request<Body>) -> Result<Answer, String> {
    let query = request.uri().query().unwrap_or_default();
    let reply = match step {
        Step::List(reply) if !is_watch(query) => reply,
        Step::Watch(rv, reply) if is_watch(query) => {
            let asked = param(query, "resourceVersion");
            if asked != Some(rv) {
                return Err(format!(
                    "WATCH from resourceVersion {asked:?}, the script expects {rv}"
                ));
            }
            reply
        }
        step => return Err(format!("{} for {step:?}", request.uri())),
    };
    Ok(match reply {
        Reply::Items(rv, items) => Answer::Respond(json(
            200,
            &serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressList",
                "metadata": {"resourceVersion": rv},
                "items": items,
            }),
        )),
        Reply::Lines(lines) => {
            let mut body = Vec::new();
            for line in &lines {
                serde_json::to_writer(&mut body, line).expect("serializes");
                body.push(b'\n');
            }
            Answer::Respond(
                Response::builder()
                    .status(200)
                    .body(Body::from(body))
                    .expect("a response"),
            )
        }
        Reply::Status(code) => Answer::Respond(json(code, &status(code))),
        Reply::Reset => Answer::Reset,
        Reply::Hold => Answer::Hold,
    })
}

/// Record an Event write and answer it as the API server does (the object back).
async fn event_write(request: Request<Body>) -> Result<(Published, Response<Body>), String> {
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| e.to_string())?;
    let event: K8sEvent = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let regarding = event.regarding.clone().unwrap_or_default();
    let published = Published {
        method: method.clone(),
        type_: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        regarding: format!(
            "{}/{}",
            regarding.namespace.unwrap_or_default(),
            regarding.name.unwrap_or_default()
        ),
    };
    let code = if method == Method::POST { 201 } else { 200 };
    let value = serde_json::to_value(&event).map_err(|e| e.to_string())?;
    Ok((published, json(code, &value)))
}

fn json(code: u16, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(value).expect("serializes")))
        .expect("a response")
}

/// The `Status` the API server sends with a failure, in a body or as a watch `ERROR` event.
fn status(code: u16) -> serde_json::Value {
    let (reason, message) = match code {
        410 => ("Expired", "too old resource version: 101 (250)"),
        _ => ("InternalError", "injected failure"),
    };
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

fn watch_event(type_: &str, object: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({"type": type_, "object": object})
}

fn ingress(name: &str, snippet: &str, resource_version: &str) -> Ingress {
    let mut ing = Ingress::test("shop", name).with_snippet(snippet);
    ing.metadata.resource_version = Some(resource_version.into());
    ing
}

fn to_json(ing: &Ingress) -> serde_json::Value {
    serde_json::to_value(ing).expect("serializes")
}

/// A short fixed pause after each failed list or watch (the watcher's and the controller's, in
/// place of kube-runtime's 0.8 s doubling to 30 s), so the test runs in milliseconds.
#[derive(Debug)]
struct Pause(Duration);

impl Iterator for Pause {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(self.0)
    }
}

impl Backoff for Pause {
    fn reset(&mut self) {}
}

/// Wait until `done` holds for what the server saw; fail on a departure from the script or
/// after [`PATIENCE`].
async fn wait_until(seen: &mut watch::Receiver<Seen>, what: &str, done: impl Fn(&Seen) -> bool) {
    let waited = tokio::time::timeout(
        PATIENCE,
        seen.wait_for(|s| !s.failures.is_empty() || done(s)),
    )
    .await
    .map(|r| r.is_ok());
    let s = seen.borrow();
    assert!(s.failures.is_empty(), "{:#?}", s.failures);
    assert_eq!(waited, Ok(true), "timed out waiting for {what}: {s:#?}");
}

/// Fail if the server sees anything more (a request or an Event) within [`QUIET`].
async fn assert_quiet(seen: &mut watch::Receiver<Seen>) {
    let (requests, events) = {
        let s = seen.borrow();
        (s.requests.len(), s.events.len())
    };
    let more = tokio::time::timeout(
        QUIET,
        seen.wait_for(|s| {
            !s.failures.is_empty() || s.requests.len() > requests || s.events.len() > events
        }),
    )
    .await
    .is_ok();
    assert!(!more, "the controller was not done: {:#?}", *seen.borrow());
}

/// The findings the context remembers, by object name.
fn remembered(ctx: &Context) -> BTreeMap<String, Vec<&'static str>> {
    ctx.current_findings()
        .into_iter()
        .map(|(k, v)| (k.name, v))
        .collect()
}

/// Run the product's Ingress watch of all namespaces against `script`; return the context,
/// what the server saw, and a stop switch with the controller's task.
struct Harness {
    ctx: Arc<Context>,
    seen: watch::Receiver<Seen>,
    synced: Arc<AtomicBool>,
    steps: usize,
    stop: tokio::sync::oneshot::Sender<()>,
    controller: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(script: Vec<Step>) -> Self {
        let (client, handle) = mock_client();
        let (ctx, _levers) = Context::test_with(client.clone(), ConfigSnapshot::of(&[], &[]), true);
        let steps = script.len();
        let (seen_tx, seen) = watch::channel(Seen::default());
        let server = tokio::spawn(serve(handle, script, seen_tx));
        let synced = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(run::ingress_scope(
            client,
            None,
            ctx.clone(),
            synced.clone(),
            || Pause(Duration::from_millis(5)),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            ctx,
            seen,
            synced,
            steps,
            stop,
            controller,
            server,
        }
    }

    /// Wait until the whole script has played and `events` Event writes have arrived, then
    /// until nothing more happens.
    async fn finish(&mut self, events: usize) -> Vec<Published> {
        let steps = self.steps;
        wait_until(&mut self.seen, "the end of the script", |s| {
            s.steps == steps && s.events.len() >= events
        })
        .await;
        assert_quiet(&mut self.seen).await;
        self.seen.borrow().events.clone()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.controller)
            .await
            .expect("the controller stops on shutdown")
            .expect("the controller did not panic");
        self.server.abort();
    }
}

/// The initial LIST has a bad and a clean Ingress. The WATCH delivers a new bad one, then the
/// connection drops. The re-WATCH from the last resourceVersion gets an HTTP 410, then a 410
/// `ERROR` event: the watcher must re-LIST, which fails three times with a 500 and once with a
/// reset connection. The LIST that succeeds shows the first bad Ingress unchanged, the one
/// from the WATCH fixed, and a new bad one created during the outage.
#[tokio::test]
async fn dropped_watch_410_and_500s_neither_lose_nor_duplicate_findings() {
    let django = ingress("django-api", XFP, "10");
    let web = ingress("web", CLEAN, "11");
    let legacy = ingress("legacy", XFP, "101");
    let legacy_fixed = ingress("legacy", CLEAN, "180");
    let checkout = ingress("checkout", XFP, "190");
    let gone = watch_event("ERROR", &status(410));
    let mut h = Harness::start(vec![
        Step::List(Reply::Items("100", vec![django.clone(), web.clone()])),
        Step::AwaitEvents(1),
        Step::Watch(
            "100",
            Reply::Lines(vec![watch_event("ADDED", &to_json(&legacy))]),
        ),
        Step::AwaitEvents(2),
        Step::Watch("101", Reply::Status(410)),
        Step::Watch("101", Reply::Lines(vec![gone])),
        Step::List(Reply::Status(500)),
        Step::List(Reply::Status(500)),
        Step::List(Reply::Reset),
        Step::List(Reply::Status(500)),
        Step::List(Reply::Items(
            "250",
            vec![django, web, legacy_fixed, checkout],
        )),
        Step::Watch("250", Reply::Hold),
    ]);
    let events = h.finish(4).await;

    // The order across objects after the re-list is the Controller's; per object it is fixed.
    assert_eq!(
        events[..2],
        [xfp_posted("shop/django-api"), xfp_posted("shop/legacy")]
    );
    assert_eq!(
        sorted(&events[2..]),
        sorted(&[xfp_posted("shop/checkout"), resolved_posted("shop/legacy")]),
        "every Event: {events:#?}"
    );
    assert_eq!(
        h.seen.borrow().requests,
        [
            "LIST",
            "WATCH 100",
            "WATCH 101",
            "WATCH 101",
            "LIST",
            "LIST",
            "LIST",
            "LIST",
            "LIST",
            "WATCH 250"
        ]
    );
    assert!(h.synced.load(Ordering::SeqCst));
    assert_eq!(
        remembered(&h.ctx),
        BTreeMap::from([
            ("checkout".to_string(), vec!["redundant-forwarded-proto"]),
            ("django-api".to_string(), vec!["redundant-forwarded-proto"]),
        ])
    );
    assert_eq!(
        h.ctx
            .metrics
            .findings_of("redundant-forwarded-proto", "shop"),
        2
    );
    h.stop().await;
}

/// Three bad Ingresses listed and published. The WATCH delivers a change to one that does not
/// matter to the check (only the resourceVersion moves), then a 410 `ERROR` event in the same
/// stream. The re-LIST fails twice with a 500; the one that succeeds no longer shows the second
/// (deleted while the watch was down: no Delete event ever comes for it). The next WATCH
/// delivers the deletion of the third. Nothing may be published after the first three Events,
/// and only the first Ingress's findings may be remembered.
#[tokio::test]
async fn deletions_during_and_after_the_outage_publish_nothing_and_are_forgotten() {
    let django = ingress("django-api", XFP, "10");
    let old = ingress("old", XFP, "12");
    let retired = ingress("retired", XFP, "13");
    let django_touched = ingress("django-api", XFP, "105");
    let mut h = Harness::start(vec![
        Step::List(Reply::Items("100", vec![django, old, retired.clone()])),
        Step::AwaitEvents(3),
        Step::Watch(
            "100",
            Reply::Lines(vec![
                watch_event("MODIFIED", &to_json(&django_touched)),
                watch_event("ERROR", &status(410)),
            ]),
        ),
        Step::List(Reply::Status(500)),
        Step::List(Reply::Status(500)),
        Step::List(Reply::Items("250", vec![django_touched, retired])),
        Step::Watch(
            "250",
            Reply::Lines(vec![watch_event(
                "DELETED",
                &to_json(&ingress("retired", XFP, "260")),
            )]),
        ),
        Step::Watch("260", Reply::Hold),
    ]);
    let events = h.finish(3).await;
    assert_eq!(
        sorted(&events),
        sorted(&[
            xfp_posted("shop/django-api"),
            xfp_posted("shop/old"),
            xfp_posted("shop/retired"),
        ]),
        "every Event: {events:#?}"
    );
    assert_eq!(
        h.seen.borrow().requests,
        [
            "LIST",
            "WATCH 100",
            "LIST",
            "LIST",
            "LIST",
            "WATCH 250",
            "WATCH 260"
        ]
    );
    assert_eq!(
        remembered(&h.ctx),
        BTreeMap::from([("django-api".to_string(), vec!["redundant-forwarded-proto"])])
    );
    assert_eq!(
        h.ctx
            .metrics
            .findings_of("redundant-forwarded-proto", "shop"),
        1
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Outages, throttling and cut streams on a mocked clock (`tokio::time::pause`): a fake API
// server with a store, a change log and a clock of its own says what a real one would, and the
// product's wiring (the Ingress watch with its production backoff, the Controller, the Event
// queue with the Recorder) runs against it. Every watch answer ends its stream (as a proxy that
// cuts connections does); the watcher must resume from the resourceVersion it got.

/// What the fake API server holds and has seen.
#[derive(Debug, Default)]
struct Fake {
    objects: BTreeMap<String, Ingress>,
    resource_version: u64,
    /// (resourceVersion, type, object) of every change.
    log: Vec<(u64, &'static str, Ingress)>,
    /// Watches from an older resourceVersion get `410 Expired` (a restarted API server).
    oldest: u64,
    /// Until then every request fails as a refused connection.
    down_until: Option<tokio::time::Instant>,
    /// Event writes still to answer `429` with this `Retry-After`.
    throttle: usize,
    retry_after: u32,
    /// Every request: (when, `LIST` / `WATCH rv` / `POST event` / `REFUSED` / `THROTTLED`).
    requests: Vec<(tokio::time::Instant, String)>,
    /// Event writes written: (when, regarding name, reason).
    written: Vec<(tokio::time::Instant, String, String)>,
    /// 429 answers: when, and about which object.
    throttled: Vec<(tokio::time::Instant, String)>,
}

impl Fake {
    fn put(&mut self, mut ing: Ingress, type_: &'static str) {
        self.resource_version += 1;
        ing.metadata.resource_version = Some(self.resource_version.to_string());
        let name = ing.metadata.name.clone().expect("named");
        if type_ == "DELETED" {
            self.objects.remove(&name);
        } else {
            self.objects.insert(name, ing.clone());
        }
        self.log.push((self.resource_version, type_, ing));
    }

    fn is_down(&self) -> bool {
        self.down_until
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    fn written_about(&self, name: &str) -> Vec<String> {
        self.written
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, r)| r.clone())
            .collect()
    }
}

type Shared = Arc<std::sync::Mutex<Fake>>;

/// Serve `handle` from `fake` until the client goes away. Watches are held until the log has
/// something newer for them, or until `cut_every` passes (then answered empty: a cut stream).
async fn serve_fake(
    mut handle: ApiServerHandle,
    fake: Shared,
    changed: Arc<tokio::sync::Notify>,
    cut_every: Duration,
) {
    let mut held: Vec<(u64, SendResponse<Response<Body>>, tokio::time::Instant)> = Vec::new();
    loop {
        let next_cut = held.iter().map(|(_, _, since)| *since + cut_every).min();
        let down_end = fake.lock().unwrap().down_until;
        tokio::select! {
            r = handle.next_request() => {
                let Some((request, send)) = r else { return };
                let now = tokio::time::Instant::now();
                let path = request.uri().path().to_string();
                let query = request.uri().query().unwrap_or_default().to_string();
                if fake.lock().unwrap().is_down() {
                    fake.lock().unwrap().requests.push((now, "REFUSED".into()));
                    send.send_error("tcp connect error: Connection refused (os error 111)");
                    continue;
                }
                if path.starts_with(EVENTS) {
                    let throttled = {
                        let mut f = fake.lock().unwrap();
                        if f.throttle > 0 {
                            f.throttle -= 1;
                            Some(f.retry_after)
                        } else {
                            None
                        }
                    };
                    let (published, response) = event_write(request).await.expect("an Event");
                    let name = published.regarding.rsplit('/').next().unwrap_or_default().to_string();
                    let mut f = fake.lock().unwrap();
                    if let Some(after) = throttled {
                        f.requests.push((now, "THROTTLED".into()));
                        f.throttled.push((now, name));
                        // As API Priority and Fairness answers: plain text and the header.
                        send.send_response(
                            Response::builder()
                                .status(429)
                                .header("Retry-After", after.to_string())
                                .body(Body::from(b"Too many requests, please try again later.\n".to_vec()))
                                .expect("a response"),
                        );
                    } else {
                        f.requests.push((now, format!("{} event", published.method)));
                        f.written.push((now, name, published.reason));
                        send.send_response(response);
                    }
                } else if path == INGRESSES {
                    let mut f = fake.lock().unwrap();
                    if is_watch(&query) {
                        let from: u64 = param(&query, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
                        f.requests.push((now, format!("WATCH {from}")));
                        if from < f.oldest {
                            send.send_response(lines(&[watch_event("ERROR", &status(410))]));
                        } else {
                            held.push((from, send, now));
                        }
                    } else {
                        f.requests.push((now, "LIST".into()));
                        let items: Vec<&Ingress> = f.objects.values().collect();
                        send.send_response(json(200, &serde_json::json!({
                            "apiVersion": "networking.k8s.io/v1", "kind": "IngressList",
                            "metadata": {"resourceVersion": f.resource_version.to_string()},
                            "items": items,
                        })));
                    }
                } else {
                    panic!("unexpected call {} {}", request.method(), request.uri());
                }
            }
            () = changed.notified() => {}
            () = sleep_until_opt(next_cut) => {}
            () = sleep_until_opt(down_end.filter(|_| fake.lock().unwrap().is_down())) => {}
        }
        // Answer what the held watches have to say; cut the ones held too long; refuse all
        // while down.
        let f = fake.lock().unwrap();
        let now = tokio::time::Instant::now();
        let mut keep = Vec::new();
        for (from, send, since) in held.drain(..) {
            if f.is_down() {
                send.send_error("connection reset by peer");
                continue;
            }
            let news: Vec<serde_json::Value> = f
                .log
                .iter()
                .filter(|(rv, _, _)| *rv > from)
                .map(|(_, t, o)| watch_event(t, &to_json(o)))
                .collect();
            if !news.is_empty() || now >= since + cut_every {
                send.send_response(lines(&news));
            } else {
                keep.push((from, send, since));
            }
        }
        held = keep;
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn lines(events: &[serde_json::Value]) -> Response<Body> {
    let mut body = Vec::new();
    for e in events {
        serde_json::to_writer(&mut body, e).expect("serializes");
        body.push(b'\n');
    }
    Response::builder()
        .status(200)
        .body(Body::from(body))
        .expect("a response")
}

/// The product's Ingress watch (production backoff) and Event queue against a [`Fake`].
struct Cluster {
    fake: Shared,
    changed: Arc<tokio::sync::Notify>,
    ctx: Arc<Context>,
    _levers: crate::k8s::fixtures::Levers,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Cluster {
    fn start(objects: Vec<Ingress>, cut_every: Duration) -> Self {
        let (client, handle) = mock_client();
        let (mut ctx, levers) =
            Context::test_with(client.clone(), ConfigSnapshot::of(&[], &[]), true);
        // The product's Event write policy, not the tests' millisecond one.
        Arc::get_mut(&mut ctx).expect("not shared yet").retry = Retry::default();
        let mut fake = Fake::default();
        for o in objects {
            fake.put(o, "ADDED");
        }
        let fake = Arc::new(std::sync::Mutex::new(fake));
        let changed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(serve_fake(handle, fake.clone(), changed.clone(), cut_every));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(run::ingress_scope(
            client,
            None,
            ctx.clone(),
            Arc::new(AtomicBool::new(false)),
            crate::k8s::backoff::WatchBackoff::default,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            fake,
            changed,
            ctx,
            _levers: levers,
            _stop: stop,
        }
    }

    fn change(&self, f: impl FnOnce(&mut Fake)) {
        f(&mut self.fake.lock().unwrap());
        self.changed.notify_one();
    }

    /// Wait (mocked time) until `done`; panic after an hour of mocked time.
    async fn wait_until(&self, what: &str, done: impl Fn(&Fake) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        while !done(&self.fake.lock().unwrap()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never: {what}: {:#?}",
                self.fake.lock().unwrap().requests
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The API server is down for `outage`, then comes back having forgotten its watch cache (every
/// watch from before gets 410). An Ingress created right then gets its Event within 10 s,
/// the one reported before the outage is not reported again, and during the outage the watch
/// retries at most every 0.5 s and at least every 3.6 s (bounded backoff, no hot loop).
async fn recovery_after(outage: Duration) -> Duration {
    let c = Cluster::start(vec![ingress("before", XFP, "0")], Duration::from_secs(300));
    c.wait_until("the Event of `before`", |f| {
        f.written_about("before").len() == 1
    })
    .await;
    let start = tokio::time::Instant::now();
    c.change(|f| f.down_until = Some(start + outage));
    tokio::time::sleep_until(start + outage).await;
    let back = tokio::time::Instant::now();
    c.change(|f| {
        f.oldest = f.resource_version + 1;
        f.put(ingress("after", XFP, "0"), "ADDED");
    });
    c.wait_until("the Event of `after`", |f| {
        f.written_about("after").len() == 1
    })
    .await;
    let recovery = c.fake.lock().unwrap().written.last().expect("written").0 - back;
    // Let everything settle, then check nothing was published twice.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let f = c.fake.lock().unwrap();
    assert_eq!(
        f.written_about("before"),
        ["RedundantForwardedProto"],
        "{:#?}",
        f.requests
    );
    assert_eq!(f.written_about("after"), ["RedundantForwardedProto"]);
    let refused: Vec<tokio::time::Instant> = f
        .requests
        .iter()
        .filter(|(_, r)| r == "REFUSED")
        .map(|(t, _)| *t)
        .collect();
    assert!(!refused.is_empty());
    for pair in refused.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(500)
                && gap <= crate::k8s::backoff::WatchBackoff::default().longest(),
            "retry gap {gap:?} during the outage"
        );
    }
    // The last try before the return is at most the longest pause before it.
    assert!(
        back - *refused.last().expect("some")
            <= crate::k8s::backoff::WatchBackoff::default().longest()
    );
    drop(f);
    assert_eq!(
        c.ctx.metrics.event_drops("deleted") + c.ctx.metrics.event_drops("rejected"),
        0
    );
    eprintln!(
        "outage {outage:?}: a new Ingress's Event {recovery:?} after the API server returned"
    );
    recovery
}

#[tokio::test(start_paused = true)]
async fn recovery_within_10_s_after_a_5_s_outage() {
    let r = recovery_after(Duration::from_secs(5)).await;
    assert!(r <= Duration::from_secs(10), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn recovery_within_10_s_after_a_45_s_outage() {
    let r = recovery_after(Duration::from_secs(45)).await;
    assert!(r <= Duration::from_secs(10), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn recovery_within_10_s_after_a_5_min_outage() {
    let r = recovery_after(Duration::from_secs(300)).await;
    assert!(r <= Duration::from_secs(10), "{r:?}");
}

/// Twenty Ingresses with two findings each; the first 25 Event writes get `429` with
/// `Retry-After: 2` (plain text, as API Priority and Fairness answers). Every finding is
/// written exactly once, in order per object; no write is retried before its `Retry-After`;
/// retries are counted as throttled, nothing is dropped.
#[tokio::test(start_paused = true)]
async fn a_429_storm_delays_event_writes_by_retry_after_without_losing_or_reordering_them() {
    let names: Vec<String> = (0..20).map(|i| format!("app-{i:02}")).collect();
    let objects = names
        .iter()
        .map(|n| ingress(n, XFP_AND_REAL_IP, "0"))
        .collect();
    let c = Cluster::start(objects, Duration::from_secs(300));
    c.change(|f| {
        f.throttle = 25;
        f.retry_after = 2;
    });
    c.wait_until("40 Events", |f| f.written.len() >= 40).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    c.ctx.queue.flush().await;
    let f = c.fake.lock().unwrap();
    for n in &names {
        assert_eq!(
            f.written_about(n),
            ["RedundantForwardedProto", "DuplicateControllerHeader"],
            "{n}"
        );
    }
    assert_eq!(f.written.len(), 40);
    assert_eq!(f.throttled.len(), 25);
    // No write about an object is sent within 2 s after a 429 about it.
    for (at, name) in &f.throttled {
        let retried = f
            .written
            .iter()
            .map(|(t, n, _)| (*t, n))
            .chain(f.throttled.iter().map(|(t, n)| (*t, n)))
            .filter(|(t, n)| *n == name && t > at)
            .map(|(t, _)| t)
            .min()
            .expect("retried");
        assert!(
            retried - *at >= Duration::from_secs(2),
            "{name} retried after {:?}",
            retried - *at
        );
    }
    let m = &c.ctx.metrics;
    assert_eq!(m.event_retries("throttled"), 25);
    assert_eq!(m.event_retries("error"), 0);
    for reason in ["deleted", "not_leader", "rejected"] {
        assert_eq!(m.event_drops(reason), 0, "{reason}");
    }
    assert_eq!(m.events_published("Warning", "RedundantForwardedProto"), 20);
    assert!(
        m.encode()
            .contains("snippet_guard_controller_event_writes_queued 0")
    );
}

/// A proxy cuts every watch after 7 s. Over 10 minutes the watch resumes from the
/// resourceVersion it had each time (no re-list), and nothing is published again; a change
/// made meanwhile still arrives.
#[tokio::test(start_paused = true)]
async fn cut_watches_resume_from_their_resource_version_without_republishing() {
    let c = Cluster::start(vec![ingress("web", XFP, "0")], Duration::from_secs(7));
    c.wait_until("the first Event", |f| f.written.len() == 1)
        .await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    c.change(|f| f.put(ingress("late", XFP, "0"), "ADDED"));
    tokio::time::sleep(Duration::from_secs(300)).await;
    let f = c.fake.lock().unwrap();
    let lists = f.requests.iter().filter(|(_, r)| r == "LIST").count();
    let watches: Vec<&String> = f
        .requests
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.starts_with("WATCH"))
        .collect();
    assert_eq!(lists, 1, "{:#?}", f.requests);
    assert!(watches.len() >= 80, "{}", watches.len());
    assert!(
        watches.iter().all(|w| *w == "WATCH 1" || *w == "WATCH 2"),
        "{watches:?}"
    );
    assert_eq!(f.written_about("web"), ["RedundantForwardedProto"]);
    assert_eq!(f.written_about("late"), ["RedundantForwardedProto"]);
}

// ---------------------------------------------------------------------------------------------
// The same over a real socket, in real time: the fake API server of `tests/common/fake_api.rs`
// on 127.0.0.1, stopped (connections refused, open watches closed) for 5 s.

#[path = "../../../tests/common/fake_api.rs"]
mod fake_api;

fn ingress_json(name: &str, snippet: &str) -> serde_json::Value {
    let mut v = to_json(&Ingress::test("shop", name).with_snippet(snippet));
    v["apiVersion"] = "networking.k8s.io/v1".into();
    v["kind"] = "Ingress".into();
    v
}

/// The controller's Ingress watch and Event queue, as `run` wires them (production backoff,
/// Event client with `Retry-After` kept), against the fake server.
fn controller_on(api: &fake_api::FakeApi) -> (Arc<Context>, tokio::sync::oneshot::Sender<()>) {
    let client = api.client();
    let (ctx, levers) = Context::test_with(client.clone(), ConfigSnapshot::of(&[], &[]), true);
    let ctx = {
        let mut ctx = ctx;
        Arc::get_mut(&mut ctx).expect("not shared yet").retry = Retry::default();
        ctx
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run::ingress_scope(
        client,
        None,
        ctx.clone(),
        Arc::new(AtomicBool::new(false)),
        crate::k8s::backoff::WatchBackoff::default,
        async move {
            let _ = stopped.await;
            drop(levers);
        },
    ));
    (ctx, stop)
}

async fn wait_real(api: &fake_api::FakeApi, what: &str, done: impl Fn(&fake_api::Store) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done(&api.store()) {
        assert!(
            std::time::Instant::now() < deadline,
            "never: {what}: {:#?}",
            api.store().requests
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_socket_recovery_within_10_s_after_a_5_s_outage_and_429s_wait_retry_after() {
    let api = fake_api::FakeApi::start_new(Duration::from_secs(3600)).await;
    api.put("ingresses", ingress_json("before", XFP));
    let (ctx, _stop) = controller_on(&api);
    wait_real(&api, "the Event of `before`", |s| {
        s.events_about("before").len() == 1
    })
    .await;

    api.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    api.start().await;
    let back = std::time::Instant::now();
    api.put("ingresses", ingress_json("after", XFP));
    wait_real(&api, "the Event of `after`", |s| {
        s.first_event_about("after").is_some()
    })
    .await;
    let recovery = api.store().first_event_about("after").expect("written") - back;
    assert!(recovery <= Duration::from_secs(10), "{recovery:?}");

    // Throttled: the next 3 writes get 429 with Retry-After: 1.
    api.throttle(3, 1);
    api.put("ingresses", ingress_json("throttled", XFP_AND_REAL_IP));
    wait_real(&api, "both Events of `throttled`", |s| {
        s.events_about("throttled").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = api.store();
    assert_eq!(
        s.events_about("before"),
        ["RedundantForwardedProto"],
        "not published again"
    );
    assert_eq!(s.events_about("after"), ["RedundantForwardedProto"]);
    assert_eq!(
        s.events_about("throttled"),
        ["RedundantForwardedProto", "DuplicateControllerHeader"],
        "in order"
    );
    assert_eq!(s.throttled.len(), 3);
    let first_429 = s.throttled[0].0;
    let written = s.first_event_about("throttled").expect("written");
    assert!(
        written - first_429 >= Duration::from_secs(3),
        "three Retry-After waits of 1 s: {:?}",
        written - first_429
    );
    drop(s);
    assert_eq!(ctx.metrics.event_retries("throttled"), 3);
    eprintln!("over a socket: recovery {recovery:?} after a 5 s outage");
}
