//! The webhook's `AdmissionReview` decoder and handler, in every mode, on two kinds of input:
//! arbitrary bytes as the body, and the fuzz bytes spliced into a valid review as the
//! `configuration-snippet` annotation (so that the engine behind the decoder is reached).
//! Whatever the input: no panic, and an `Ok` outcome is coherent (a denial has a message and
//! echoes the uid; an admission has no denial message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snippet_guard::Settings;
use snippet_guard::k8s::webhook::{Mode, Policy, review_in};

const TEMPLATE: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
"request":{"uid":"fuzz-uid","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
"resource":{"group":"networking.k8s.io","version":"v1","resource":"ingresses"},
"name":"fuzz","namespace":"shop","operation":"UPDATE",
"object":{"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
"metadata":{"name":"fuzz","namespace":"shop","annotations":{
"nginx.ingress.kubernetes.io/configuration-snippet":SNIPPET}},
"spec":{"ingressClassName":"nginx"}},
"oldObject":{"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
"metadata":{"name":"fuzz","namespace":"shop","annotations":{
"nginx.ingress.kubernetes.io/configuration-snippet":"proxy_set_header X-Forwarded-Proto $scheme;\n"}}}}}"#;

fn policies() -> Vec<Policy> {
    let mut out = Vec::new();
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        for only_new_findings in [false, true] {
            out.push(Policy {
                mode,
                settings: Settings::default(),
                only_new_findings,
            });
        }
    }
    out
}

fn judge(policy: &Policy, body: &[u8], spliced: bool) {
    let Ok(outcome) = review_in(policy, &[], body) else {
        // A valid review with any string as the snippet must never be refused.
        assert!(!spliced, "a valid review was refused");
        return;
    };
    if outcome.allowed() {
        assert!(
            outcome.message().is_empty(),
            "admitted with a denial message"
        );
    } else {
        assert_eq!(policy.mode, Mode::Enforce, "denied outside enforce mode");
        assert!(!outcome.message().is_empty(), "denied without a message");
    }
    if spliced {
        assert_eq!(outcome.uid, "fuzz-uid");
    }
}

fuzz_target!(|data: &[u8]| {
    let policies = policies();
    for policy in &policies {
        judge(policy, data, false);
    }
    let snippet = String::from_utf8_lossy(data);
    let quoted = serde_json::to_string(&snippet).expect("a string serializes");
    let body = TEMPLATE.replace("SNIPPET", &quoted);
    for policy in &policies {
        judge(policy, body.as_bytes(), true);
    }
});
