//! A fake Kubernetes API server on 127.0.0.1 (plain HTTP/1.1), for fault tests of the watches
//! and the Event writes over a real socket. Shared by `tests/webhook_faults.rs` and the
//! controller's `src/k8s/controller/fault_tests.rs` (included there by path).
//!
//! It keeps objects of any collection (`configmaps`, `ingresses`, `ingressclasses`, ...) with a
//! resourceVersion counter and a change log, answers LIST (with `fieldSelector=metadata.name=`)
//! and WATCH (a chunked stream of the log from the asked resourceVersion), and accepts Event
//! writes. Faults:
//! - [`FakeApi::stop`] closes the listener and every open connection: new connections are
//!   refused (ECONNREFUSED) until [`FakeApi::start`], which listens on the same port again and,
//!   like a restarted API server, answers every watch from before with `410 Expired`;
//! - [`FakeApi::throttle`]: the next N Event writes get `429` with `Retry-After` (plain text,
//!   as API Priority and Fairness answers);
//! - `cut_every`: every watch stream is ended after this long, as proxies do.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// (collection, namespace or "", name)
type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    pub resource_version: u64,
    /// (resourceVersion, type, collection, object)
    log: Vec<(u64, &'static str, String, Value)>,
    /// Watches from an older resourceVersion get `410 Expired`.
    oldest: u64,
    /// Event writes still to answer 429, with this Retry-After.
    throttle: usize,
    retry_after: u32,
    /// Every request: when, and `LIST ingresses`, `WATCH configmaps 12`, `POST events`, ...
    pub requests: Vec<(Instant, String)>,
    /// Event writes accepted: when, and the Event.
    pub events: Vec<(Instant, Value)>,
    /// Event writes answered 429: when, and the Event.
    pub throttled: Vec<(Instant, Value)>,
}

impl Store {
    /// Events accepted about `name`: their reasons, in order.
    pub fn events_about(&self, name: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, e)| e["regarding"]["name"] == name)
            .map(|(_, e)| e["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// When the first Event about `name` was accepted.
    pub fn first_event_about(&self, name: &str) -> Option<Instant> {
        self.events
            .iter()
            .find(|(_, e)| e["regarding"]["name"] == name)
            .map(|(t, _)| *t)
    }
}

pub struct FakeApi {
    pub addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    changed: Arc<Notify>,
    cut_every: Duration,
    tasks: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn collection_of(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest = match parts.first() {
        Some(&"api") => &parts[2..],
        Some(&"apis") => &parts[3..],
        _ => return None,
    };
    match rest {
        [collection] => Some(((*collection).to_string(), String::new())),
        ["namespaces", ns, collection] => Some(((*collection).to_string(), (*ns).to_string())),
        ["namespaces", ns, collection, _name] => {
            Some(((*collection).to_string(), (*ns).to_string()))
        }
        _ => None,
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.replace("%3D", "=").replace("%2F", "/"))
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

fn expired() -> Value {
    json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version", "reason": "Expired", "code": 410}})
}

impl FakeApi {
    /// Listen on 127.0.0.1 (a port the kernel picks).
    pub async fn start_new(cut_every: Duration) -> Arc<FakeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = Arc::new(FakeApi {
            addr: listener.local_addr().unwrap(),
            store: Arc::default(),
            changed: Arc::new(Notify::new()),
            cut_every,
            tasks: Mutex::new(None),
        });
        api.serve(listener);
        api
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }

    /// Add or replace an object (`collection` as in the URL: `configmaps`, `ingresses`).
    pub fn put(&self, collection: &str, mut object: Value) {
        {
            let mut s = self.store();
            s.resource_version += 1;
            object["metadata"]["resourceVersion"] = s.resource_version.to_string().into();
            let key = (
                collection.to_string(),
                object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                object["metadata"]["name"].as_str().unwrap().to_string(),
            );
            let type_ = if s.objects.contains_key(&key) {
                "MODIFIED"
            } else {
                "ADDED"
            };
            s.objects.insert(key, object.clone());
            let rv = s.resource_version;
            s.log.push((rv, type_, collection.to_string(), object));
        }
        self.changed.notify_waiters();
    }

    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        {
            let mut s = self.store();
            let key = (
                collection.to_string(),
                namespace.to_string(),
                name.to_string(),
            );
            let Some(mut object) = s.objects.remove(&key) else {
                return;
            };
            s.resource_version += 1;
            object["metadata"]["resourceVersion"] = s.resource_version.to_string().into();
            let rv = s.resource_version;
            s.log.push((rv, "DELETED", collection.to_string(), object));
        }
        self.changed.notify_waiters();
    }

    /// The next `n` Event writes get 429 with `Retry-After: seconds`.
    pub fn throttle(&self, n: usize, seconds: u32) {
        let mut s = self.store();
        s.throttle = n;
        s.retry_after = seconds;
    }

    /// Close the listener and every connection: connections are refused until [`Self::start`].
    pub fn stop(&self) {
        if let Some(task) = self.tasks.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Listen again on the same port; watches from before the restart get `410 Expired`.
    pub async fn start(self: &Arc<Self>) {
        {
            let mut s = self.store();
            s.oldest = s.resource_version + 1;
        }
        // The port was just released; binding it again may take a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot listen again: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let api = self.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let api = api.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.tasks.lock().unwrap() = Some(task);
    }

    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let now = Instant::now();
        let Some((collection, namespace)) = collection_of(&path) else {
            return json_response(404, &json!({"kind": "Status", "code": 404}));
        };
        if collection == "events" {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let event: Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut s = self.store();
            if s.throttle > 0 {
                s.throttle -= 1;
                s.requests.push((now, format!("{method} events 429")));
                s.throttled.push((now, event));
                return Response::builder()
                    .status(429)
                    .header("Retry-After", s.retry_after.to_string())
                    .body(Body::from("Too many requests, please try again later.\n"))
                    .unwrap();
            }
            s.requests.push((now, format!("{method} events")));
            s.events.push((now, event.clone()));
            let code = if method == http::Method::POST {
                201
            } else {
                200
            };
            return json_response(code, &event);
        }
        let name = param(&query, "fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_string));
        let matches = move |c: &str, o: &Value| {
            c == collection
                && (namespace.is_empty() || o["metadata"]["namespace"] == namespace.as_str())
                && name.as_deref().is_none_or(|n| o["metadata"]["name"] == n)
        };
        if param(&query, "watch").as_deref() == Some("true") {
            let from: u64 = param(&query, "resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let gone = {
                let mut s = self.store();
                s.requests.push((now, format!("WATCH {path} {from}")));
                from < s.oldest
            };
            if gone {
                let mut line = serde_json::to_vec(&expired()).unwrap();
                line.push(b'\n');
                return Response::builder().body(Body::from(line)).unwrap();
            }
            let api = self.clone();
            let until = tokio::time::Instant::now() + self.cut_every;
            let stream = futures::stream::unfold(from, move |from| {
                let api = api.clone();
                let matches = matches.clone();
                async move {
                    loop {
                        let changed = api.changed.notified();
                        let mut changed = std::pin::pin!(changed);
                        changed.as_mut().enable();
                        let (lines, last) = {
                            let s = api.store();
                            let mut out = Vec::new();
                            let mut last = from;
                            for (rv, t, c, o) in s.log.iter().filter(|(rv, ..)| *rv > from) {
                                last = *rv;
                                if matches(c, o) {
                                    serde_json::to_writer(
                                        &mut out,
                                        &json!({"type": t, "object": o}),
                                    )
                                    .unwrap();
                                    out.push(b'\n');
                                }
                            }
                            (out, last)
                        };
                        if !lines.is_empty() {
                            return Some((Ok::<_, Infallible>(Bytes::from(lines)), last));
                        }
                        tokio::select! {
                            () = &mut changed => {}
                            () = tokio::time::sleep_until(until) => return None,
                        }
                    }
                }
            });
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap();
        }
        let s = {
            let mut s = self.store();
            s.requests.push((now, format!("LIST {path}")));
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((c, _, _), o)| matches(c, o))
                .map(|(_, o)| o.clone())
                .collect();
            json!({"kind": "List", "apiVersion": "v1",
                "metadata": {"resourceVersion": s.resource_version.to_string()}, "items": items})
        };
        json_response(200, &s)
    }

    /// A kube client for this server, built like the product's (no client-side retries).
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().unwrap());
        config.default_retry = false;
        kube::Client::try_from(config).unwrap()
    }
}
