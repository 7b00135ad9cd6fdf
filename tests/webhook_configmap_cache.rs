//! The webhook's ConfigMap context through a mocked API server (kube-rs `tower-test` style): a
//! `kube::Client` over `tower_test::mock::pair`, and a small fake API server that answers the
//! reflectors' lists and holds their watches until a test step changes an object.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use snippet_guard::Settings;
use snippet_guard::k8s::configmap_cache::{ConfigMapCache, Snapshot};
use snippet_guard::k8s::webhook::{Decision, Mode, Policy, review};
use tokio::sync::{mpsc, oneshot};
use tower_test::mock::{Handle, SendResponse};

const TIMEOUT: Duration = Duration::from_secs(10);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");

type Key = (String, String);

enum Step {
    Put(Value),
    Delete(Key),
}

/// What the fake API server holds and has seen.
#[derive(Default)]
struct Fake {
    objects: BTreeMap<Key, Value>,
    /// IngressClasses, listed cluster-wide (their watch is held open and never answered).
    classes: Vec<Value>,
    resource_version: u64,
    watches: Vec<(Key, SendResponse<Response<Body>>)>,
    class_watches: Vec<SendResponse<Response<Body>>>,
}

fn key_of(o: &Value) -> Key {
    (
        o["metadata"]["namespace"].as_str().unwrap().to_string(),
        o["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

/// `/api/v1/namespaces/NS/configmaps?...fieldSelector=metadata.name%3DNAME...` -> key, watch?
fn parse(uri: &http::Uri) -> (Key, bool) {
    let path = uri.path();
    let ns = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|p| p.strip_suffix("/configmaps"))
        .unwrap_or_else(|| panic!("unexpected path {path}"));
    let query = uri.query().unwrap_or_default();
    let name = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("fieldSelector=metadata.name%3D"))
        .unwrap_or_else(|| panic!("watch not narrowed to one name: {uri}"));
    let watch = query.split('&').any(|kv| kv == "watch=true");
    ((ns.to_string(), name.to_string()), watch)
}

fn body(v: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

impl Fake {
    fn bump(&mut self, o: &mut Value) {
        self.resource_version += 1;
        o["metadata"]["resourceVersion"] = self.resource_version.to_string().into();
    }

    fn answer(&mut self, request: &Request<Body>, send: SendResponse<Response<Body>>) {
        if request.uri().path() == "/apis/networking.k8s.io/v1/ingressclasses" {
            let watch = request
                .uri()
                .query()
                .unwrap_or_default()
                .contains("watch=true");
            if watch {
                self.class_watches.push(send);
            } else {
                send.send_response(body(&json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "IngressClassList",
                    "metadata": {"resourceVersion": self.resource_version.to_string()},
                    "items": self.classes,
                })));
            }
            return;
        }
        let (key, watch) = parse(request.uri());
        if watch {
            self.watches.push((key, send));
            return;
        }
        let items: Vec<Value> = self.objects.get(&key).cloned().into_iter().collect();
        send.send_response(body(&json!({
            "apiVersion": "v1",
            "kind": "ConfigMapList",
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        })));
    }

    /// Apply a step and end the watches on that object with its event (the reflector then
    /// watches again from the new resourceVersion).
    fn apply(&mut self, step: Step) {
        let (key, event) = match step {
            Step::Put(mut o) => {
                self.bump(&mut o);
                let key = key_of(&o);
                let kind = if self.objects.contains_key(&key) {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                self.objects.insert(key.clone(), o.clone());
                (key, json!({"type": kind, "object": o}))
            }
            Step::Delete(key) => {
                let mut o = self.objects.remove(&key).expect("deleting a known object");
                self.bump(&mut o);
                (key, json!({"type": "DELETED", "object": o}))
            }
        };
        let mut line = serde_json::to_vec(&event).unwrap();
        line.push(b'\n');
        let (hit, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.watches)
            .into_iter()
            .partition(|(k, _)| *k == key);
        self.watches = kept;
        for (_, send) in hit {
            send.send_response(Response::builder().body(Body::from(line.clone())).unwrap());
        }
    }
}

/// Run the fake API server until the test ends; record every request URI.
fn spawn_fake(
    api: Handle<Request<Body>, Response<Body>>,
    objects: Vec<Value>,
    seen: Arc<Mutex<Vec<String>>>,
) -> mpsc::UnboundedSender<(Step, oneshot::Sender<()>)> {
    spawn_fake_with_classes(api, objects, Vec::new(), seen)
}

fn spawn_fake_with_classes(
    mut api: Handle<Request<Body>, Response<Body>>,
    objects: Vec<Value>,
    classes: Vec<Value>,
    seen: Arc<Mutex<Vec<String>>>,
) -> mpsc::UnboundedSender<(Step, oneshot::Sender<()>)> {
    let (tx, mut steps) = mpsc::unbounded_channel::<(Step, oneshot::Sender<()>)>();
    tokio::spawn(async move {
        let mut fake = Fake {
            classes,
            ..Fake::default()
        };
        for mut o in objects {
            fake.bump(&mut o);
            fake.objects.insert(key_of(&o), o);
        }
        loop {
            tokio::select! {
                next = api.next_request() => {
                    let Some((request, send)) = next else { break };
                    seen.lock().unwrap().push(request.uri().to_string());
                    fake.answer(&request, send);
                }
                step = steps.recv() => {
                    let Some((step, done)) = step else { break };
                    fake.apply(step);
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

fn configmap(ns: &str, name: &str, data: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn names(s: &Snapshot) -> Vec<String> {
    s.objects
        .iter()
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect()
}

async fn wait(
    cache: &ConfigMapCache,
    what: &str,
    f: impl FnMut(&Arc<Snapshot>) -> bool,
) -> Arc<Snapshot> {
    tokio::time::timeout(TIMEOUT, cache.wait_for(f))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {what}: {:?}",
                names(&cache.snapshot())
            )
        })
}

#[tokio::test]
async fn the_cache_follows_the_controller_configmap_and_its_proxy_set_headers() {
    let controller = fixture("context/ingress-nginx-controller.json");
    let headers = fixture("context/custom-headers.json");
    let other = configmap("edge", "other-headers", &json!({"X-Edge": "1"}));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (service, api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let steps = spawn_fake(api, vec![controller.clone(), headers, other], seen.clone());
    let step = |s: Step| {
        let (done, wait) = oneshot::channel();
        steps.send((s, done)).unwrap();
        wait
    };

    let cache = ConfigMapCache::watch(
        kube::Client::new(service, "default"),
        vec![("ingress-nginx".into(), "ingress-nginx-controller".into())],
    );
    let snap = wait(&cache, "the first sync", |s| s.synced).await;
    assert_eq!(
        names(&snap),
        [
            "ingress-nginx/ingress-nginx-controller",
            "ingress-nginx/custom-headers"
        ]
    );
    assert!(
        snap.objects
            .iter()
            .all(|o| !o.json.contains("managedFields"))
    );
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().any(
                |u| u.starts_with("/api/v1/namespaces/ingress-nginx/configmaps?")
                    && u.contains("fieldSelector=metadata.name%3Dingress-nginx-controller")
            ),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|u| u.contains("fieldSelector=metadata.name%3Dcustom-headers")),
            "{seen:?}"
        );
    }

    // Requests are judged against the snapshot: the controller's location-snippet sets X-Tenant.
    let policy = Policy {
        mode: Mode::Enforce,
        settings: Settings {
            controller_configmaps: vec!["ingress-nginx/ingress-nginx-controller".into()],
            ..Settings::default()
        },
        only_new_findings: false,
    };
    let body = std::fs::read(format!("{FIXTURES}/create-in-context.json")).unwrap();
    let o = review(&policy, &cache.snapshot().context(&policy), &body).unwrap();
    assert_eq!(o.decision, Decision::Warn);

    // proxy-set-headers now names a ConfigMap in another namespace: that one is watched, the
    // old one dropped.
    let mut moved = controller.clone();
    moved["data"]["proxy-set-headers"] = "edge/other-headers".into();
    step(Step::Put(moved)).await.unwrap();
    let snap = wait(&cache, "the new proxy-set-headers ConfigMap", |s| {
        names(s).contains(&"edge/other-headers".to_string())
    })
    .await;
    assert_eq!(
        names(&snap),
        [
            "ingress-nginx/ingress-nginx-controller",
            "edge/other-headers"
        ]
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|u| u.starts_with("/api/v1/namespaces/edge/configmaps"))
    );

    // A change of the watched header map reaches the snapshot.
    step(Step::Put(configmap(
        "edge",
        "other-headers",
        &json!({"X-Edge": "2"}),
    )))
    .await
    .unwrap();
    wait(&cache, "the changed header map", |s| {
        s.objects
            .iter()
            .any(|o| o.name == "other-headers" && o.json.contains("\"X-Edge\":\"2\""))
    })
    .await;

    // Snippets turned off in the controller ConfigMap: the same Ingress passes.
    let mut off = controller.clone();
    off["data"]["allow-snippet-annotations"] = "false".into();
    step(Step::Put(off)).await.unwrap();
    wait(&cache, "snippets off", |s| {
        s.objects
            .iter()
            .any(|o| o.json.contains("\"allow-snippet-annotations\":\"false\""))
    })
    .await;
    let original = std::fs::read(format!("{FIXTURES}/create-original-report.json")).unwrap();
    let o = review(&policy, &cache.snapshot().context(&policy), &original).unwrap();
    // Snippets off: nothing is denied; a warning says the snippet is ignored.
    assert_eq!(o.decision, Decision::Warn);
    assert_eq!(
        o.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        ["ignored-snippet"]
    );

    // Deleted: nothing is left, and the webhook stays ready.
    step(Step::Delete((
        "ingress-nginx".into(),
        "ingress-nginx-controller".into(),
    )))
    .await
    .unwrap();
    let snap = wait(&cache, "the deletion", |s| s.objects.is_empty()).await;
    assert!(snap.synced);
    let o = review(&policy, &snap.context(&policy), &original).unwrap();
    assert_eq!(o.decision, Decision::Deny);
}

#[tokio::test]
async fn a_missing_controller_configmap_still_syncs() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (service, api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let _steps = spawn_fake(api, Vec::new(), seen);
    let cache = ConfigMapCache::watch(
        kube::Client::new(service, "default"),
        vec![("ingress-nginx".into(), "ingress-nginx-controller".into())],
    );
    let snap = wait(&cache, "the first sync", |s| s.synced).await;
    assert!(snap.objects.is_empty());
}

/// The webhook watches IngressClasses too: an Ingress whose class another controller owns (F5's
/// NGINX Ingress Controller under the name `nginx`) is not judged as ingress-nginx's.
#[tokio::test]
async fn an_ingress_class_of_another_controller_is_not_judged() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (service, api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let f5 = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "nginx", "resourceVersion": "1"},
        "spec": {"controller": "nginx.org/ingress-controller"}});
    let _steps = spawn_fake_with_classes(api, Vec::new(), vec![f5], seen.clone());
    let cache = ConfigMapCache::watch(kube::Client::new(service, "default"), Vec::new());
    let snap = wait(&cache, "the IngressClass", |s| !s.classes.is_empty()).await;
    assert_eq!(snap.classes.len(), 1);
    let policy = Policy {
        mode: Mode::Enforce,
        settings: Settings::default(),
        only_new_findings: false,
    };
    // The original report's Ingress has class `nginx`: here it belongs to F5's controller, which
    // never reads its ingress-nginx snippet: admitted, with the one info finding saying so.
    let body = std::fs::read(format!("{FIXTURES}/create-original-report.json")).unwrap();
    let o = review(&policy, &snap.context(&policy), &body).unwrap();
    assert!(o.allowed(), "{:?}", o.findings);
    let rules: Vec<&str> = o.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["ignored-snippet"], "{:?}", o.findings);
    // Without the IngressClass the same review is denied.
    let alone = ConfigMapCache::empty().snapshot();
    let o = review(&policy, &alone.context(&policy), &body).unwrap();
    assert_eq!(o.decision, Decision::Deny);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|u| u.starts_with("/apis/networking.k8s.io/v1/ingressclasses?")),
        "{:?}",
        seen.lock().unwrap()
    );
}
