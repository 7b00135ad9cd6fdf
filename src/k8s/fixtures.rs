//! Test support: a `kube::Client` over `tower_test::mock::pair`, an [`ApiServerVerifier`] that
//! plays the API server's side of a [`Scenario`] and checks method, URI and body, and object
//! builders.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::engine::Settings;
use crate::k8s::controller::{
    ConfigSnapshot, Context, Excluded, Metrics, RecorderPublisher, Retry,
};

pub type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client whose every request goes to the returned handle.
#[must_use]
pub fn mock_client() -> (Client, ApiServerHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Fails the test when an expected call does not come.
pub async fn timeout_after_1s<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(1), f)
        .await
        .expect("the expected API call did not come within 1 s")
}

/// An Event the API server must receive.
#[derive(Debug, Clone)]
pub struct ExpectedEvent {
    pub namespace: String,
    pub type_: &'static str,
    pub reason: String,
    pub action: String,
    /// The note must start with this.
    pub note_prefix: String,
    pub regarding_kind: &'static str,
    pub regarding_name: String,
}

/// What the mocked API server sees, in order.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// A POST of this Event, answered 201.
    EventPublished(ExpectedEvent),
    /// A PATCH of the first Event of this series (`series.count` given), answered 200.
    EventSeries(ExpectedEvent, i32),
    /// A POST of this Event, answered with this HTTP status and a `Status` body.
    EventFails(ExpectedEvent, u16),
    /// A GET of this Lease, answered with a Lease held by `holder` and renewed just now.
    LeaseHeldBy {
        namespace: String,
        name: String,
        holder: String,
    },
    /// No call at all for a while.
    NoCalls,
}

pub struct ApiServerVerifier(pub ApiServerHandle);

impl std::fmt::Debug for ApiServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiServerVerifier")
    }
}

impl ApiServerVerifier {
    /// Play the scenarios in order; panics (fails the test) on any mismatch.
    pub async fn run(mut self, scenarios: Vec<Scenario>) -> Self {
        for s in scenarios {
            self = match s {
                Scenario::EventPublished(e) => self.event(&e, 201, None).await,
                Scenario::EventSeries(e, count) => self.event(&e, 200, Some(count)).await,
                Scenario::EventFails(e, status) => self.event(&e, status, None).await,
                Scenario::LeaseHeldBy {
                    namespace,
                    name,
                    holder,
                } => self.lease(&namespace, &name, &holder).await,
                Scenario::NoCalls => self.no_calls().await,
            };
        }
        self
    }

    /// Spawn [`Self::run`]; join the handle to see failures.
    #[must_use]
    pub fn spawn(self, scenarios: Vec<Scenario>) -> tokio::task::JoinHandle<Self> {
        tokio::spawn(self.run(scenarios))
    }

    async fn next(
        &mut self,
    ) -> (
        Request<Body>,
        tower_test::mock::SendResponse<Response<Body>>,
    ) {
        timeout_after_1s(self.0.next_request())
            .await
            .expect("the client went away")
    }

    async fn event(mut self, e: &ExpectedEvent, status: u16, series: Option<i32>) -> Self {
        let (request, send) = self.next().await;
        let path = request.uri().path().to_string();
        let base = format!("/apis/events.k8s.io/v1/namespaces/{}/events", e.namespace);
        if series.is_none() {
            assert_eq!(request.method(), Method::POST, "{path}");
            assert_eq!(path, base);
        } else {
            assert_eq!(request.method(), Method::PATCH, "{path}");
            assert!(path.starts_with(&format!("{base}/")), "{path}");
        }
        let body = request.into_body().collect_bytes().await.expect("a body");
        let event: K8sEvent = serde_json::from_slice(&body).expect("an Event");
        assert_eq!(event.type_.as_deref(), Some(e.type_), "{event:#?}");
        assert_eq!(
            event.reason.as_deref(),
            Some(e.reason.as_str()),
            "{event:#?}"
        );
        assert_eq!(
            event.action.as_deref(),
            Some(e.action.as_str()),
            "{event:#?}"
        );
        let note = event.note.clone().unwrap_or_default();
        assert!(
            note.starts_with(&e.note_prefix),
            "note {note:?} does not start with {:?}",
            e.note_prefix
        );
        assert!(note.len() <= 1024);
        let regarding = event.regarding.clone().expect("regarding");
        assert_eq!(regarding.kind.as_deref(), Some(e.regarding_kind));
        assert_eq!(regarding.name.as_deref(), Some(e.regarding_name.as_str()));
        assert_eq!(regarding.namespace.as_deref(), Some(e.namespace.as_str()));
        assert_eq!(event.reporting_controller.as_deref(), Some("snippet-guard"));
        assert_eq!(event.series.as_ref().map(|s| s.count), series);
        let response = if status < 300 {
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&event).expect("serializes")))
        } else {
            let status_body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "injected failure", "reason": "InternalError", "code": status
            });
            Response::builder().status(status).body(Body::from(
                serde_json::to_vec(&status_body).expect("serializes"),
            ))
        };
        send.send_response(response.expect("a response"));
        self
    }

    async fn lease(mut self, namespace: &str, name: &str, holder: &str) -> Self {
        let (request, send) = self.next().await;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().path(),
            format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
        );
        let now = k8s_openapi::jiff::Timestamp::now();
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {
                "holderIdentity": holder, "leaseDurationSeconds": 15,
                "acquireTime": now.to_string(), "renewTime": now.to_string(), "leaseTransitions": 1
            }
        });
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&lease).expect("serializes")))
                .expect("a response"),
        );
        self
    }

    async fn no_calls(mut self) -> Self {
        let next = tokio::time::timeout(Duration::from_millis(300), self.0.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!(
                "unexpected API call: {} {}",
                request.method(),
                request.uri()
            );
        }
        self
    }
}

/// The levers a test pulls on a [`Context`].
#[derive(Debug)]
pub struct Levers {
    pub config: watch::Sender<Arc<ConfigSnapshot>>,
    pub leader: watch::Sender<bool>,
    pub excluded: watch::Sender<Excluded>,
}

impl Context {
    /// A leading context over a mocked API server, judging with `config`.
    #[must_use]
    pub fn test(config: ConfigSnapshot) -> (Arc<Context>, ApiServerVerifier, Levers) {
        let (client, handle) = mock_client();
        let (ctx, levers) = Context::test_with(client, config, true);
        (ctx, ApiServerVerifier(handle), levers)
    }

    /// [`Context::test`] with a given client and leadership.
    #[must_use]
    pub fn test_with(
        client: Client,
        config: ConfigSnapshot,
        leader: bool,
    ) -> (Arc<Context>, Levers) {
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let (leader_tx, leader_rx) = watch::channel(leader);
        let (excluded_tx, excluded_rx) = watch::channel::<Excluded>(Some(Arc::default()));
        let reporter = Reporter {
            controller: "snippet-guard".into(),
            instance: Some("snippet-guard-test".into()),
        };
        let mut ctx = Context::new(
            Settings::default(),
            Arc::new(RecorderPublisher(Recorder::new(
                crate::k8s::controller::queue::throttle_aware(client),
                reporter,
            ))),
            config_rx,
            leader_rx,
            excluded_rx,
            Arc::new(Metrics::new()),
        );
        ctx.retry = Retry {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            requeue: Duration::from_millis(10),
            ..Retry::default()
        };
        (
            Arc::new(ctx),
            Levers {
                config: config_tx,
                leader: leader_tx,
                excluded: excluded_tx,
            },
        )
    }
}

/// Builders for test objects.
pub trait IngressExt {
    fn test(namespace: &str, name: &str) -> Self;
    #[must_use]
    fn with_snippet(self, snippet: &str) -> Self;
}

impl IngressExt for Ingress {
    fn test(namespace: &str, name: &str) -> Self {
        let mut ing = Ingress::default();
        ing.metadata.name = Some(name.into());
        ing.metadata.namespace = Some(namespace.into());
        ing.metadata.uid = Some(format!("uid-{namespace}-{name}"));
        ing.spec = Some(IngressSpec {
            ingress_class_name: Some("nginx".into()),
            ..IngressSpec::default()
        });
        ing
    }

    fn with_snippet(mut self, snippet: &str) -> Self {
        self.metadata.annotations.get_or_insert_default().insert(
            "nginx.ingress.kubernetes.io/configuration-snippet".into(),
            snippet.into(),
        );
        self
    }
}

/// The ingress-nginx controller ConfigMap with `data`.
#[must_use]
pub fn controller_configmap(data: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("ingress-nginx-controller".into());
    cm.metadata.namespace = Some("ingress-nginx".into());
    cm.metadata.uid = Some("uid-cm".into());
    cm.data = Some(
        data.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    );
    cm
}
