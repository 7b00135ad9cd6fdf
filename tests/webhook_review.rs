//! Handler tests: captured `AdmissionReview` bodies (tests/fixtures/admission/, written from the
//! Kubernetes API reference, shaped like what `kubectl apply` makes the API server send)
//! through `snippet_guard::k8s::webhook::review`, the function `/validate` calls.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use snippet_guard::engine::Context;
use snippet_guard::k8s::webhook::review::{
    MAX_DENY_FINDINGS, MAX_WARNING_CHARS, MAX_WARNING_TOTAL_CHARS, MAX_WARNINGS, review_with,
};
use snippet_guard::k8s::webhook::{
    ContextObject, Decision, Error, Mode, Outcome, Policy, review_in,
};
use snippet_guard::model::{Object, Workspace};
use snippet_guard::{Settings, input};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");
const CONTROLLER: &str = "ingress-nginx/ingress-nginx-controller";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn context(names: &[&str]) -> Vec<ContextObject> {
    names
        .iter()
        .map(|n| {
            let cm: ConfigMap = serde_json::from_slice(&fixture(&format!("context/{n}.json")))
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            ContextObject::from_configmap(&cm)
        })
        .collect()
}

fn policy(mode: Mode) -> Policy {
    Policy {
        mode,
        settings: Settings {
            controller_configmaps: vec![CONTROLLER.to_string()],
            ..Settings::default()
        },
        only_new_findings: false,
    }
}

fn judge(policy: &Policy, ctx: &[ContextObject], name: &str) -> Outcome {
    review_in(policy, ctx, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What `snippet-guard lint` says about a manifest, one line per finding.
fn lint_lines(path: &str) -> Vec<String> {
    let mut ws = Workspace::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    input::load_paths(&mut ws, &[path], input::Format::Auto).unwrap();
    snippet_guard::check(&ws, &Settings::default())
        .iter()
        .map(snippet_guard::Diagnostic::one_line)
        .collect()
}

fn response_json(o: &Outcome) -> serde_json::Value {
    serde_json::to_value(&o.review).unwrap()
}

#[test]
fn enforce_denies_the_original_report_in_the_words_of_lint() {
    let o = judge(&policy(Mode::Enforce), &[], "create-original-report.json");
    assert_eq!(o.decision, Decision::Deny);
    assert!(!o.allowed());
    let lint = lint_lines("examples/original-report.yaml");
    assert_eq!(lint.len(), 1, "{lint:?}");
    let first = o.message().lines().next().unwrap();
    assert_eq!(first, lint[0], "deny message and lint differ");
    for part in [
        "redundant-forwarded-proto: ",
        "(annotation nginx.ingress.kubernetes.io/configuration-snippet, line 2)",
        ". Fix: remove this line",
    ] {
        assert!(first.contains(part), "{part:?} missing from {first}");
    }
    assert!(o.message().contains("snippet-guard.io/ignore-<rule-id>"));
    // The kubectl.kubernetes.io/last-applied-configuration annotation holds the snippet too.
    assert_eq!(o.findings.len(), 1, "{:?}", o.findings);
    assert!(o.warnings().is_empty());

    let json = response_json(&o);
    assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(json["kind"], "AdmissionReview");
    assert!(json.get("request").is_none());
    assert_eq!(
        json["response"]["uid"],
        "0df28fce-5f6a-4a5e-8c1f-6a1f0f4e3b01"
    );
    assert_eq!(json["response"]["allowed"], false);
    assert_eq!(json["response"]["status"]["message"], o.message());
    assert_eq!(json["response"]["status"]["code"], 403);
    assert_eq!(json["response"]["status"]["reason"], "Forbidden");
}

#[test]
fn last_applied_configuration_alone_is_not_judged() {
    let mut body = fixture_json("create-original-report.json");
    let annotations = body["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap();
    annotations.remove("nginx.ingress.kubernetes.io/configuration-snippet");
    assert!(
        annotations["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-Proto")
    );
    let o = review_in(
        &policy(Mode::Enforce),
        &[],
        &serde_json::to_vec(&body).unwrap(),
    )
    .unwrap();
    assert_eq!(o.decision, Decision::Allow);
    assert!(o.findings.is_empty());
}

#[test]
fn warn_mode_admits_with_short_warnings() {
    let o = judge(&policy(Mode::Warn), &[], "create-original-report.json");
    assert_eq!(o.decision, Decision::Warn);
    assert!(o.allowed());
    assert!(o.message().is_empty());
    let w = o.warnings();
    assert!(w.len() > 1, "{w:?}");
    assert!(
        w.iter().all(|l| l.chars().count() <= MAX_WARNING_CHARS),
        "{w:?}"
    );
    assert!(w[0].starts_with("redundant-forwarded-proto: X-Forwarded-Proto"));
    // Wrapped, not cut: the pieces add up to the lint text.
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let joined: Vec<String> = w.iter().flat_map(|l| words(l)).collect();
    assert_eq!(
        joined,
        words(&lint_lines("examples/original-report.yaml")[0])
    );
    assert_eq!(
        response_json(&o)["response"]["warnings"]
            .as_array()
            .unwrap()
            .len(),
        w.len()
    );
}

#[test]
fn audit_mode_admits_silently_but_keeps_the_findings() {
    let o = judge(&policy(Mode::Audit), &[], "create-original-report.json");
    assert_eq!(o.decision, Decision::Audit);
    assert!(o.allowed());
    assert!(o.warnings().is_empty());
    assert_eq!(o.findings.len(), 1);
    assert_eq!(o.findings[0].rule, "redundant-forwarded-proto");
}

#[test]
fn a_clean_ingress_is_allowed_in_every_mode() {
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        let o = judge(&policy(mode), &[], "create-fixed.json");
        assert_eq!(o.decision, Decision::Allow, "{mode:?}");
        assert!(o.allowed() && o.warnings().is_empty() && o.findings.is_empty());
        assert_eq!(o.operation, "CREATE");
        assert_eq!(o.kind, "Ingress");
    }
}

#[test]
fn dry_run_is_judged_with_the_same_answer() {
    let p = policy(Mode::Enforce);
    let real = judge(&p, &[], "create-original-report.json");
    let dry = judge(&p, &[], "create-dry-run.json");
    assert!(dry.dry_run && !real.dry_run);
    assert_eq!(dry.decision, Decision::Deny);
    assert_eq!(dry.message(), real.message());
}

#[test]
fn update_with_a_finding_the_old_object_had() {
    let o = judge(&policy(Mode::Enforce), &[], "update-same-finding.json");
    assert_eq!(o.decision, Decision::Deny, "judged on the new object");

    let only_new = Policy {
        only_new_findings: true,
        ..policy(Mode::Enforce)
    };
    let o = judge(&only_new, &[], "update-same-finding.json");
    assert_eq!(o.decision, Decision::Warn);
    assert!(o.allowed());
    assert!(o.findings[0].preexisting);
    assert!(
        o.warnings()[0].starts_with("(not new) redundant-forwarded-proto:"),
        "{:?}",
        o.warnings()
    );
}

#[test]
fn update_that_adds_a_finding_is_denied_even_with_only_new_findings() {
    let only_new = Policy {
        only_new_findings: true,
        ..policy(Mode::Enforce)
    };
    let o = judge(&only_new, &[], "update-new-finding.json");
    assert_eq!(o.decision, Decision::Deny);
    assert!(!o.findings[0].preexisting);
    assert_eq!(o.operation, "UPDATE");
}

#[test]
fn delete_and_connect_are_allowed_unjudged() {
    for (name, op) in [
        ("delete.json", "DELETE"),
        ("connect-pod-exec.json", "CONNECT"),
    ] {
        let o = judge(&policy(Mode::Enforce), &[], name);
        assert_eq!(o.decision, Decision::Skip, "{name}");
        assert_eq!(o.skip_reason, Some("operation"));
        assert_eq!(o.operation, op);
        assert!(o.allowed() && o.warnings().is_empty());
        assert_eq!(
            response_json(&o)["response"]["uid"],
            fixture_json(name)["request"]["uid"]
        );
    }
}

#[test]
fn kinds_it_does_not_handle_are_allowed() {
    // A Pod carrying the very same annotation.
    let o = judge(&policy(Mode::Enforce), &[], "create-pod.json");
    assert_eq!(o.decision, Decision::Skip);
    assert_eq!(o.skip_reason, Some("kind"));
    assert!(o.allowed());
}

#[test]
fn a_subresource_is_not_judged() {
    let mut body = fixture_json("update-new-finding.json");
    body["request"]["subResource"] = "status".into();
    let o = review_in(
        &policy(Mode::Enforce),
        &[],
        &serde_json::to_vec(&body).unwrap(),
    )
    .unwrap();
    assert_eq!(o.decision, Decision::Skip);
    assert_eq!(o.skip_reason, Some("subresource"));
}

#[test]
fn suppression_annotations_are_honoured_unless_turned_off() {
    let o = judge(&policy(Mode::Enforce), &[], "create-suppressed.json");
    assert_eq!(o.decision, Decision::Allow);
    let mut strict = policy(Mode::Enforce);
    strict.settings.annotation_suppressions = false;
    let o = judge(&strict, &[], "create-suppressed.json");
    assert_eq!(o.decision, Decision::Deny);
    assert!(
        !o.message().contains("To accept a finding"),
        "no hint when suppressions are off"
    );
}

#[test]
fn ingresses_of_other_classes_are_allowed() {
    let o = judge(&policy(Mode::Enforce), &[], "create-other-class.json");
    assert_eq!(o.decision, Decision::Allow);
    assert!(o.findings.is_empty());
    // --ingress-class traefik says ingress-nginx serves that class too.
    let mut p = policy(Mode::Enforce);
    p.settings.ingress_classes = vec!["traefik".into()];
    assert_eq!(
        judge(&p, &[], "create-other-class.json").decision,
        Decision::Deny
    );
}

#[test]
fn enforce_attaches_warning_findings_as_warnings() {
    let o = judge(&policy(Mode::Enforce), &[], "create-warning-only.json");
    assert_eq!(o.decision, Decision::Warn);
    assert!(o.allowed());
    assert!(o.warnings()[0].starts_with("duplicate-snippet-header: X-Tenant is set twice"));
}

#[test]
fn ingresses_are_judged_in_the_context_of_the_controller_configmap() {
    let p = policy(Mode::Enforce);
    // Alone, one X-Tenant line is fine.
    let o = judge(&p, &[], "create-in-context.json");
    assert_eq!(o.decision, Decision::Allow);
    // The controller's location-snippet sets X-Tenant in every location too.
    let ctx = context(&["ingress-nginx-controller", "custom-headers"]);
    let o = judge(&p, &ctx, "create-in-context.json");
    assert_eq!(o.decision, Decision::Warn, "{:?}", o.findings);
    assert_eq!(o.findings.len(), 1);
    assert!(
        o.findings[0].text.contains("location-snippet"),
        "{}",
        o.findings[0].text
    );
    // Findings on the context objects themselves are not the reviewed object's.
    assert!(
        o.findings
            .iter()
            .all(|f| f.text.contains("configuration-snippet"))
    );
}

#[test]
fn snippet_gates_of_the_controller_configmap_apply() {
    let ctx = context(&["ingress-nginx-controller-snippets-off"]);
    let o = judge(&policy(Mode::Enforce), &ctx, "create-original-report.json");
    // Not rendered, so no duplicate to deny; but the user is told the snippet is ignored (and
    // that it would send X-Forwarded-Proto twice once the gate is opened).
    assert_eq!(o.decision, Decision::Warn, "{:?}", o.findings);
    assert_eq!(o.findings.len(), 1, "{:?}", o.findings);
    assert_eq!(o.findings[0].rule, "ignored-snippet");
    assert!(
        o.findings[0].text.contains("X-Forwarded-Proto twice"),
        "{}",
        o.findings[0].text
    );
}

#[test]
fn the_controller_configmap_itself_is_judged_replacing_the_cached_copy() {
    let p = policy(Mode::Enforce);
    let ctx = context(&["ingress-nginx-controller", "custom-headers"]);
    for ctx in [&ctx[..], &[]] {
        let o = judge(&p, ctx, "update-controller-configmap.json");
        assert_eq!(o.decision, Decision::Deny, "{:?}", o.findings);
        assert_eq!(o.kind, "ConfigMap");
        // The error, and the warning about the server-snippet both versions carry.
        let rules: Vec<&str> = o.findings.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            ["redundant-forwarded-proto", "ineffective-inherited-header"]
        );
        assert!(o.warnings()[0].starts_with("ineffective-inherited-header:"));
        assert_eq!(o.message().matches("redundant-forwarded-proto").count(), 1);
        assert!(
            o.message()
                .starts_with("redundant-forwarded-proto: X-Forwarded-Proto is already set"),
            "{}",
            o.message()
        );
        assert!(
            o.message()
                .contains("(ConfigMap key location-snippet, line 2)"),
            "{}",
            o.message()
        );
    }
}

#[test]
fn the_proxy_set_headers_configmap_is_judged_through_the_controller_configmap() {
    let p = policy(Mode::Enforce);
    let ctx = context(&["ingress-nginx-controller", "custom-headers"]);
    let o = judge(&p, &ctx, "update-proxy-set-headers.json");
    assert_eq!(o.decision, Decision::Deny, "{:?}", o.findings);
    assert!(o.message().contains("X-Forwarded-Proto"));
    // Without the controller ConfigMap nothing says these are headers.
    let o = judge(&p, &[], "update-proxy-set-headers.json");
    assert_eq!(o.decision, Decision::Allow);
}

#[test]
fn an_unrelated_configmap_is_allowed() {
    let ctx = context(&["ingress-nginx-controller", "custom-headers"]);
    let o = judge(
        &policy(Mode::Enforce),
        &ctx,
        "create-unrelated-configmap.json",
    );
    assert_eq!(o.decision, Decision::Allow);
    assert!(o.findings.is_empty());
}

#[test]
fn a_v1beta1_review_is_answered_in_v1beta1() {
    let o = judge(
        &policy(Mode::Enforce),
        &[],
        "create-original-report-v1beta1.json",
    );
    assert_eq!(o.decision, Decision::Deny);
    assert_eq!(response_json(&o)["apiVersion"], "admission.k8s.io/v1beta1");
}

#[test]
fn generate_name_and_a_namespace_given_only_by_the_request() {
    let o = judge(&policy(Mode::Enforce), &[], "create-generate-name.json");
    assert_eq!(o.decision, Decision::Deny);
    assert_eq!(o.name, "django-api-<generated>");
    assert_eq!(o.namespace.as_deref(), Some("shop"));
}

#[test]
fn malformed_reviews_are_errors_with_a_clear_message() {
    let cases = [
        (
            "garbage.txt",
            "request body is not a valid AdmissionReview: expected value",
        ),
        (
            "not-a-review.json",
            "expected kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind `Ingress`",
        ),
        ("no-request.json", "AdmissionReview has no `request`"),
        ("no-uid.json", "AdmissionReview request has no `uid`"),
        (
            "create-without-object.json",
            "CREATE request has no `object`",
        ),
        ("unknown-operation.json", "unknown variant `PATCH`"),
        (
            "object-not-a-mapping.json",
            "request body is not a valid AdmissionReview",
        ),
        ("truncated.json", "EOF while parsing"),
    ];
    for (name, expected) in cases {
        let err = review_in(
            &policy(Mode::Enforce),
            &[],
            &fixture(&format!("malformed/{name}")),
        )
        .expect_err(name);
        assert!(err.is_bad_request(), "{name}: {err}");
        assert!(err.to_string().contains(expected), "{name}: {err}");
    }
    for body in [
        &b""[..],
        b"{}",
        b"[]",
        b"null",
        b"{\"kind\":\"AdmissionReview\"}",
    ] {
        let err = review_in(&policy(Mode::Enforce), &[], body).expect_err("bad body");
        assert!(err.is_bad_request(), "{err}");
    }
}

#[test]
fn an_engine_panic_admits_with_a_warning_in_every_mode() {
    let boom = |_: &Context, _: &Object| -> Vec<snippet_guard::Diagnostic> {
        panic!("engine bug for the test")
    };
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        let p = policy(mode);
        let o = review_with(
            &p,
            &snippet_guard::k8s::webhook::context(&p, &[]),
            &fixture("create-original-report.json"),
            &boom,
        )
        .unwrap();
        assert_eq!(o.decision, Decision::Error);
        assert!(o.allowed());
        assert_eq!(o.internal_error.as_deref(), Some("engine bug for the test"));
        assert!(
            o.warnings()[0].contains("admitted unchecked"),
            "{:?}",
            o.warnings()
        );
        assert!(matches!(
            Error::Internal(String::new()).metric_label(),
            "internal"
        ));
    }
}

/// An Ingress with `n` distinct headers each set twice.
fn many_findings(n: usize) -> Vec<u8> {
    let mut body = fixture_json("create-warning-only.json");
    let mut snippet = String::new();
    for i in 0..n {
        let _ = write!(
            snippet,
            "proxy_set_header X-Custom-{i} a;\nproxy_set_header X-Custom-{i} b;\n"
        );
    }
    body["request"]["object"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] =
        snippet.into();
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn warnings_stay_within_the_api_server_limits() {
    let o = review_in(&policy(Mode::Warn), &[], &many_findings(60)).unwrap();
    assert_eq!(o.findings.len(), 60);
    let w = o.warnings();
    assert!(w.len() <= MAX_WARNINGS, "{}", w.len());
    assert!(w.iter().all(|l| l.chars().count() <= MAX_WARNING_CHARS));
    assert!(w.iter().map(|l| l.chars().count()).sum::<usize>() <= MAX_WARNING_TOTAL_CHARS);
    let last = w.last().unwrap();
    assert!(
        last.ends_with(
            "more finding(s) not shown; run `snippet-guard lint` on the object to see all"
        ),
        "{last}"
    );
}

#[test]
fn a_denial_lists_a_bounded_number_of_findings() {
    let mut body: serde_json::Value = serde_json::from_slice(&many_findings(0)).unwrap();
    let mut snippet = String::new();
    for i in 0..30 {
        let _ = writeln!(
            snippet,
            "if ($http_x_{i} = \"\") {{ proxy_set_header X-Tenant-{i} a; }}"
        );
    }
    body["request"]["object"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] =
        format!("{snippet}proxy_set_header X-Forwarded-Proto $scheme;\n").into();
    let o = review_in(
        &policy(Mode::Enforce),
        &[],
        &serde_json::to_vec(&body).unwrap(),
    )
    .unwrap();
    assert_eq!(o.decision, Decision::Deny);
    let errors = o
        .findings
        .iter()
        .filter(|f| f.effective == snippet_guard::Severity::Error)
        .count();
    assert!(errors > MAX_DENY_FINDINGS, "{errors}");
    assert!(
        o.message()
            .contains(&format!("... and {} more", errors - MAX_DENY_FINDINGS))
    );
    assert!(
        o.message().lines().count() <= MAX_DENY_FINDINGS + 2,
        "{}",
        o.message()
    );
}

/// The controller ConfigMap's snippets are parsed once per change of the cache (when the
/// snapshot's context is built), never per review: each review parses only the reviewed
/// Ingress's own snippet.
#[test]
fn the_controller_configmap_is_parsed_once_per_change_not_per_review() {
    use snippet_guard::k8s::configmap_cache::ConfigMapCache;
    use snippet_guard::nginx::parser::parses_on_this_thread;
    let p = policy(Mode::Enforce);
    let cache = ConfigMapCache::fixed(context(&["ingress-nginx-controller", "custom-headers"]));
    let snapshot = cache.snapshot();
    let before = parses_on_this_thread();
    let ctx = snapshot.context(&p);
    let building = parses_on_this_thread() - before;
    // location-snippet and server-snippet of the controller ConfigMap.
    assert_eq!(building, 2);
    let body = fixture("create-in-context.json");
    let before = parses_on_this_thread();
    for _ in 0..50 {
        let ctx = snapshot.context(&p);
        let o = snippet_guard::k8s::webhook::review(&p, &ctx, &body).unwrap();
        assert_eq!(o.decision, Decision::Warn, "{:?}", o.findings);
    }
    // One configuration-snippet per review, and nothing of the ConfigMap's.
    assert_eq!(parses_on_this_thread() - before, 50);
    assert!(Arc::ptr_eq(&ctx, &snapshot.context(&p)));
}

/// An `AdmissionReview` of `object` (CREATE), as the API server sends it for a custom resource.
fn review_of(
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    object: &serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "6c3a4a53-0a0b-4c55-9d9e-111111111111",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

fn virtual_server(route: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "k8s.nginx.org/v1", "kind": "VirtualServer",
        "metadata": {"name": "django-api", "namespace": "shop"},
        "spec": {"host": "api.example.com",
            "upstreams": [{"name": "django", "service": "django", "port": 8000}],
            "routes": [route]}
    })
}

#[test]
fn a_virtual_server_with_the_seed_bug_is_denied_in_nic_terms_and_its_fix_admitted() {
    let policy = policy(Mode::Enforce);
    let bad = review_of(
        "k8s.nginx.org",
        "v1",
        "VirtualServer",
        "virtualservers",
        &virtual_server(&serde_json::json!({"path": "/",
            "location-snippets": "add_header X-Frame-Options DENY;\nproxy_set_header X-Forwarded-Proto $scheme;\n",
            "action": {"pass": "django"}})),
    );
    let o = review_in(&policy, &[], &bad).unwrap();
    assert_eq!(o.decision, Decision::Deny, "{:?}", o.findings);
    let first = o.message().lines().next().unwrap();
    for part in [
        "redundant-forwarded-proto: X-Forwarded-Proto is already set by F5 NGINX Ingress Controller here",
        "(field spec.routes[0].location-snippets, line 2)",
        "action.proxy.requestHeaders.set",
    ] {
        assert!(first.contains(part), "{part:?} missing from {first}");
    }
    let fixed = review_of(
        "k8s.nginx.org",
        "v1",
        "VirtualServer",
        "virtualservers",
        &virtual_server(
            &serde_json::json!({"path": "/", "action": {"proxy": {"upstream": "django",
            "requestHeaders": {"set": [{"name": "X-Forwarded-Proto", "value": "https"}]}}}}),
        ),
    );
    let o = review_in(&policy, &[], &fixed).unwrap();
    assert_eq!(o.decision, Decision::Allow, "{:?}", o.findings);
}

#[test]
fn kinds_of_other_groups_are_admitted_untouched() {
    let other = review_of(
        "example.com",
        "v1",
        "VirtualServer",
        "virtualservers",
        &serde_json::json!({"apiVersion": "example.com/v1", "kind": "VirtualServer",
            "metadata": {"name": "x", "namespace": "shop"},
            "spec": {"routes": [{"location-snippets": "proxy_set_header X-Forwarded-Proto $scheme;"}]}}),
    );
    let o = review_in(&policy(Mode::Enforce), &[], &other).unwrap();
    assert_eq!(o.decision, Decision::Skip);
    assert!(o.allowed());
    assert!(o.findings.is_empty());
}

#[test]
fn a_snippets_filter_with_the_seed_bug_is_denied_in_ngf_terms() {
    let policy = policy(Mode::Enforce);
    let filter = |value: &str| {
        serde_json::json!({
            "apiVersion": "gateway.nginx.org/v1alpha1", "kind": "SnippetsFilter",
            "metadata": {"name": "proto", "namespace": "shop"},
            "spec": {"snippets": [{"context": "http.server.location", "value": value}]}
        })
    };
    let bad = review_of(
        "gateway.nginx.org",
        "v1alpha1",
        "SnippetsFilter",
        "snippetsfilters",
        &filter("proxy_set_header X-Forwarded-Proto $scheme;\n"),
    );
    let o = review_in(&policy, &[], &bad).unwrap();
    assert_eq!(o.decision, Decision::Deny, "{:?}", o.findings);
    let first = o.message().lines().next().unwrap();
    for part in [
        "redundant-forwarded-proto: X-Forwarded-Proto is already set by NGINX Gateway Fabric here",
        "(field spec.snippets[0].value, line 1)",
        "RequestHeaderModifier",
    ] {
        assert!(first.contains(part), "{part:?} missing from {first}");
    }
    let clean = review_of(
        "gateway.nginx.org",
        "v1alpha1",
        "SnippetsFilter",
        "snippetsfilters",
        &filter("proxy_set_header X-Tenant blue;\n"),
    );
    assert_eq!(
        review_in(&policy, &[], &clean).unwrap().decision,
        Decision::Allow
    );
    // A route whose RequestHeaderModifier spells the header in lowercase: both reach the backend.
    let route = |name: &str| {
        serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"rules": [{"filters": [{"type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": name, "value": "https"}]}}],
                "backendRefs": [{"name": "web", "port": 80}]}]}
        })
    };
    let lower = review_of(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
        &route("x-forwarded-proto"),
    );
    let o = review_in(&policy, &[], &lower).unwrap();
    assert_eq!(o.decision, Decision::Deny, "{:?}", o.findings);
    let exact = review_of(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
        &route("X-Forwarded-Proto"),
    );
    assert_eq!(
        review_in(&policy, &[], &exact).unwrap().decision,
        Decision::Allow
    );
}
