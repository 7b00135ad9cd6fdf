//! The certificate manager against a mocked API server that keeps one Secret and one
//! ValidatingWebhookConfiguration, with `resourceVersion` conflicts as the real one has them.

use std::sync::{Arc, Mutex};

use http::{Method, Response};
use kube::client::Body;

use super::*;
use crate::k8s::fixtures::{ApiServerHandle, mock_client};

const NS: &str = "sg";
const SECRET: &str = "sg-webhook-managed-tls";
const VWC: &str = "sg-snippet-guard";
const SECRET_PATH: &str = "/api/v1/namespaces/sg/secrets/sg-webhook-managed-tls";
const VWC_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/sg-snippet-guard";
const DAY: Duration = Duration::from_secs(86_400);

fn config() -> ManagedTls {
    ManagedTls {
        namespace: NS.into(),
        secret: SECRET.into(),
        webhook_configuration: VWC.into(),
        sans: vec!["sg-webhook.sg.svc".into(), "sg-webhook.sg".into()],
        cert_validity: DAY * 365,
        ca_validity: DAY * 3650,
        renew_before: DAY * 30,
    }
}

/// What the fake API server holds and saw.
#[derive(Debug, Default)]
struct Api {
    secret: serde_json::Value,
    vwc: serde_json::Value,
    /// Writes received: `PUT secret` / `PUT vwc`, and `409` when refused.
    writes: Vec<String>,
    /// Before answering the next Secret write, another replica writes this.
    race: Option<Material>,
}

fn empty_secret() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": SECRET, "namespace": NS, "resourceVersion": "1"}
    })
}

fn vwc(ca_bundle: Option<&str>) -> serde_json::Value {
    let mut client_config = serde_json::json!({"service": {"name": "sg-webhook", "namespace": NS}});
    if let Some(b) = ca_bundle {
        client_config["caBundle"] = serde_json::json!(base64(b.as_bytes()));
    }
    let hook = |name: &str| {
        serde_json::json!({
            "name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": client_config.clone()
        })
    };
    serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VWC, "resourceVersion": "1"},
        "webhooks": [hook("ingresses.snippet-guard.io"), hook("configmaps.snippet-guard.io")]
    })
}

fn base64(bytes: &[u8]) -> String {
    serde_json::to_value(ByteString(bytes.to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn with_material(mut secret: serde_json::Value, m: &Material) -> serde_json::Value {
    let mut s: Secret = serde_json::from_value(secret.clone()).unwrap();
    m.write_to(&mut s);
    secret["data"] = serde_json::to_value(s.data).unwrap();
    secret
}

fn bump(obj: &mut serde_json::Value) {
    let rv: u64 = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    obj["metadata"]["resourceVersion"] = serde_json::json!((rv + 1).to_string());
}

fn status(code: u16) -> Response<Body> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the object has been modified", "reason": "Conflict", "code": code
    });
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(obj: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(obj).unwrap()))
        .unwrap()
}

/// Serve GET and PUT of the two objects until the client goes away.
fn serve(mut handle: ApiServerHandle, api: Arc<Mutex<Api>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (method, path) = (request.method().clone(), request.uri().path().to_string());
            let body = request.into_body().collect_bytes().await.unwrap();
            let mut api = api.lock().unwrap();
            let response = match (method, path.as_str()) {
                (Method::GET, SECRET_PATH) => ok(&api.secret),
                (Method::GET, VWC_PATH) => ok(&api.vwc),
                (Method::PUT, SECRET_PATH | VWC_PATH) => {
                    let is_secret = path == SECRET_PATH;
                    if is_secret && let Some(m) = api.race.take() {
                        api.secret = with_material(api.secret.clone(), &m);
                        bump(&mut api.secret);
                    }
                    let mut new: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let current = if is_secret {
                        &mut api.secret
                    } else {
                        &mut api.vwc
                    };
                    let what = if is_secret { "secret" } else { "vwc" };
                    if new["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
                    {
                        bump(&mut new);
                        *current = new.clone();
                        api.writes.push(format!("PUT {what}"));
                        ok(&new)
                    } else {
                        api.writes.push(format!("409 {what}"));
                        status(409)
                    }
                }
                (m, p) => panic!("unexpected call {m} {p}"),
            };
            send.send_response(response);
        }
    })
}

fn secret_material(api: &Api) -> Option<Material> {
    Material::from_secret(&serde_json::from_value(api.secret.clone()).unwrap())
}

fn bundles(api: &Api) -> Vec<Option<String>> {
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(api.vwc.clone()).unwrap();
    vwc.webhooks
        .unwrap()
        .into_iter()
        .map(|h| {
            h.client_config
                .ca_bundle
                .map(|b| String::from_utf8(b.0).unwrap())
        })
        .collect()
}

fn served_der(store: &CertStore) -> Vec<u8> {
    store.current().unwrap().cert[0].as_ref().to_vec()
}

async fn sync(api: &Arc<Mutex<Api>>, store: &CertStore) -> Material {
    let (client, handle) = mock_client();
    let server = serve(handle, api.clone());
    let m = tokio::time::timeout(Duration::from_secs(10), config().sync(&client, store))
        .await
        .expect("a sync takes milliseconds")
        .expect("synced");
    drop(client);
    server.abort();
    m
}

#[tokio::test]
async fn an_empty_secret_gets_a_ca_and_certificate_the_ca_bundle_and_the_server_its_certificate() {
    let api = Arc::new(Mutex::new(Api {
        secret: empty_secret(),
        vwc: vwc(None),
        ..Api::default()
    }));
    let store = CertStore::new();
    let m = sync(&api, &store).await;
    {
        let seen = api.lock().unwrap();
        assert_eq!(seen.writes, ["PUT secret", "PUT vwc"]);
        assert_eq!(secret_material(&seen).as_ref(), Some(&m));
        assert_eq!(
            bundles(&seen),
            [Some(m.ca_bundle.clone()), Some(m.ca_bundle.clone())]
        );
    }
    // The served certificate is the Secret's, names the Service and is signed by the CA.
    assert_eq!(served_der(&store), first_der(&m.cert).unwrap());
    let leaf = &parse_pem(&m.cert).unwrap()[0].1;
    let ca = &parse_pem(&m.ca_bundle).unwrap()[0].1;
    assert_eq!(leaf.issuer, ca.subject);
    assert_eq!(
        leaf.sans,
        BTreeSet::from(["sg-webhook.sg.svc".to_string(), "sg-webhook.sg".to_string()])
    );
    let days = |i: &CertInfo| {
        i.not_after
            .duration_since(SystemTime::now())
            .unwrap()
            .as_secs()
            / 86_400
    };
    assert_eq!((days(leaf), days(ca)), (364, 3649));
    // Nothing more to do on the next pass, by this replica or another.
    let again = sync(&api, &CertStore::new()).await;
    assert_eq!(again, m);
    assert_eq!(api.lock().unwrap().writes, ["PUT secret", "PUT vwc"]);
}

#[tokio::test]
async fn a_replica_that_loses_the_race_serves_what_won() {
    let winner = config()
        .mint(&Plan::NewCa("test".into()), None, SystemTime::now())
        .unwrap();
    let api = Arc::new(Mutex::new(Api {
        secret: empty_secret(),
        vwc: vwc(None),
        race: Some(winner.clone()),
        ..Api::default()
    }));
    let store = CertStore::new();
    let m = sync(&api, &store).await;
    assert_eq!(m, winner);
    let seen = api.lock().unwrap();
    assert_eq!(seen.writes, ["409 secret", "PUT vwc"]);
    assert_eq!(secret_material(&seen), Some(winner.clone()));
    assert_eq!(
        bundles(&seen)[0].as_deref(),
        Some(winner.ca_bundle.as_str())
    );
    assert_eq!(served_der(&store), first_der(&winner.cert).unwrap());
}

#[tokio::test]
async fn a_certificate_near_expiry_is_renewed_from_the_same_ca_without_touching_the_ca_bundle() {
    let mut short = config();
    short.cert_validity = DAY * 20; // under renew_before (30 days)
    let old = short
        .mint(&Plan::NewCa("test".into()), None, SystemTime::now())
        .unwrap();
    assert!(matches!(
        config().plan(Some(&old), SystemTime::now()),
        Plan::NewCert(_)
    ));
    let api = Arc::new(Mutex::new(Api {
        secret: with_material(empty_secret(), &old),
        vwc: vwc(Some(&old.ca_bundle)),
        ..Api::default()
    }));
    let store = CertStore::new();
    let m = sync(&api, &store).await;
    assert_eq!(api.lock().unwrap().writes, ["PUT secret"]);
    assert_eq!((&m.ca_bundle, &m.ca_key), (&old.ca_bundle, &old.ca_key));
    assert_ne!(m.cert, old.cert);
    assert_eq!(served_der(&store), first_der(&m.cert).unwrap());
}

#[tokio::test]
async fn a_ca_near_expiry_is_renewed_and_the_old_ca_stays_in_the_bundle() {
    let mut short = config();
    short.ca_validity = DAY * 300; // under cert_validity + renew_before
    short.cert_validity = DAY * 200;
    let old = short
        .mint(&Plan::NewCa("test".into()), None, SystemTime::now())
        .unwrap();
    let api = Arc::new(Mutex::new(Api {
        secret: with_material(empty_secret(), &old),
        vwc: vwc(Some(&old.ca_bundle)),
        ..Api::default()
    }));
    let store = CertStore::new();
    store
        .load_pem(old.cert.as_bytes(), old.key.as_bytes())
        .unwrap();
    let m = sync(&api, &store).await;
    let seen = api.lock().unwrap();
    assert_eq!(seen.writes, ["PUT secret", "PUT vwc"]);
    let cas = parse_pem(&m.ca_bundle).unwrap();
    assert_eq!(cas.len(), 2, "new CA, then the old one");
    assert_eq!(cas[1].0, old.ca_bundle);
    assert_ne!(m.ca_key, old.ca_key);
    assert_eq!(parse_pem(&m.cert).unwrap()[0].1.issuer, cas[0].1.subject);
    assert_eq!(bundles(&seen)[1].as_deref(), Some(m.ca_bundle.as_str()));
    assert_eq!(served_der(&store), first_der(&m.cert).unwrap());
}

#[tokio::test]
async fn a_reset_ca_bundle_is_set_again_and_changed_names_get_a_new_certificate() {
    let current = config()
        .mint(&Plan::NewCa("test".into()), None, SystemTime::now())
        .unwrap();
    let api = Arc::new(Mutex::new(Api {
        secret: with_material(empty_secret(), &current),
        vwc: vwc(None),
        ..Api::default()
    }));
    sync(&api, &CertStore::new()).await;
    assert_eq!(api.lock().unwrap().writes, ["PUT vwc"]);

    let mut renamed = config();
    renamed.sans.push("sg-webhook".into());
    assert!(matches!(
        renamed.plan(Some(&current), SystemTime::now()),
        Plan::NewCert(why) if why.contains("names")
    ));
}

#[test]
fn garbage_in_the_secret_means_a_new_ca() {
    let mut m = config()
        .mint(&Plan::NewCa("test".into()), None, SystemTime::now())
        .unwrap();
    let c = config();
    assert_eq!(c.plan(Some(&m), SystemTime::now()), Plan::Keep);
    let key = m.key.clone();
    m.key = config()
        .mint(&Plan::NewCa("other".into()), None, SystemTime::now())
        .unwrap()
        .key;
    assert!(
        matches!(c.plan(Some(&m), SystemTime::now()), Plan::NewCert(why) if why.contains("does not match"))
    );
    m.key = key;
    m.ca_bundle = "not a certificate".into();
    assert!(matches!(
        c.plan(Some(&m), SystemTime::now()),
        Plan::NewCa(_)
    ));
    assert!(matches!(c.plan(None, SystemTime::now()), Plan::NewCa(_)));
}
