//! The engine's context: which controller configuration judges which object, independent of
//! the order of the inputs.

use snippet_guard_engine::engine::{Context, check};
use snippet_guard_engine::input::{Format, add_text};
use snippet_guard_engine::model::Workspace;
use snippet_guard_engine::{Diagnostic, Settings};

fn configmap(name: &str, instance: &str, allow: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: ingress-nginx\n  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n    app.kubernetes.io/instance: {instance}\ndata:\n  allow-snippet-annotations: \"{allow}\"\n  annotations-risk-level: Critical\n---\n"
    )
}

fn class(name: &str, instance: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/instance: {instance}\nspec:\n  controller: k8s.io/ingress-nginx\n---\n"
    )
}

fn ingress(name: &str, class: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\nspec:\n  ingressClassName: {class}\n---\n"
    )
}

fn lint(docs: &[String]) -> (Vec<(String, &'static str)>, Vec<String>) {
    let mut ws = Workspace::new();
    add_text(&mut ws, "all.yaml", &docs.concat(), Format::Yaml);
    assert!(ws.load_errors.is_empty(), "{:?}", ws.load_errors);
    let settings = Settings::default();
    let found: Vec<(String, &'static str)> = check(&ws, &settings)
        .iter()
        .map(|d: &Diagnostic| (d.object.as_ref().unwrap().name.clone(), d.rule.id))
        .collect();
    let mut found = found;
    found.sort();
    (found, Context::from_workspace(&ws, &settings).warnings())
}

/// Two controllers: `public` allows snippets, `internal` does not. Each Ingress is judged by
/// the ConfigMap of its class's Helm release, whatever the order of the documents.
#[test]
fn each_ingress_is_judged_by_its_own_controller_in_any_order() {
    let docs = vec![
        configmap("public-ingress-nginx-controller", "public", "true"),
        configmap("internal-ingress-nginx-controller", "internal", "false"),
        class("public", "public"),
        class("internal", "internal"),
        ingress("a", "public"),
        ingress("b", "internal"),
    ];
    let expected = vec![
        ("a".to_string(), "redundant-forwarded-proto"),
        ("b".to_string(), "ignored-snippet"),
    ];
    let (found, warnings) = lint(&docs);
    assert_eq!(found, expected);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let mut reversed = docs.clone();
    reversed.reverse();
    assert_eq!(lint(&reversed).0, expected);
    let mut rotated = docs;
    rotated.rotate_left(3);
    assert_eq!(lint(&rotated).0, expected);
}

/// Without a way to tell, the verdict is still the same in any order, and a warning says which
/// ConfigMap was used.
#[test]
fn an_ambiguous_choice_does_not_depend_on_order_and_is_said() {
    let docs = vec![
        configmap("b-controller", "release-b", "false"),
        configmap("a-controller", "release-a", "true"),
        ingress("web", "nginx"),
    ];
    let (found, warnings) = lint(&docs);
    let mut reversed = docs.clone();
    reversed.reverse();
    assert_eq!(lint(&reversed).0, found);
    // ingress-nginx/a-controller comes first by name: it allows snippets.
    assert_eq!(
        found,
        vec![("web".to_string(), "redundant-forwarded-proto")]
    );
    assert!(
        warnings[0].contains("ingress-nginx/a-controller, ingress-nginx/b-controller"),
        "{warnings:?}"
    );
}

/// An IngressClass named `nginx` that F5 NGINX Ingress Controller owns: its Ingresses are judged
/// by that profile, which never reads the ingress-nginx snippet (an info finding says so); no
/// ingress-nginx duplicate is reported.
#[test]
fn an_explicit_ingress_class_wins_over_the_name_nginx() {
    let f5 = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: nginx.org/ingress-controller\n---\n".to_string();
    let (found, _) = lint(&[f5, ingress("web", "nginx")]);
    assert_eq!(found, vec![("web".to_string(), "ignored-snippet")]);
    let other = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: example.com/other\n---\n".to_string();
    let (found, _) = lint(&[other, ingress("web", "nginx")]);
    assert!(found.is_empty(), "{found:?}");
    let (found, _) = lint(&[ingress("web", "nginx")]);
    assert_eq!(
        found,
        vec![("web".to_string(), "redundant-forwarded-proto")]
    );
}

/// `--select` runs only the selected rules (the others are never called), `--ignore` skips.
#[test]
fn rules_not_selected_do_not_run() {
    let mut ws = Workspace::new();
    add_text(
        &mut ws,
        "a.yaml",
        &ingress("web", "nginx").replace(
            "$scheme;\n",
            "$scheme;\n      proxy_set_header X-Real-IP $remote_addr;\n",
        ),
        Format::Yaml,
    );
    let ids = |settings: &Settings| {
        check(&ws, settings)
            .iter()
            .map(|d| d.rule.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&Settings::default()),
        ["redundant-forwarded-proto", "duplicate-controller-header"]
    );
    let select = Settings {
        select: vec!["duplicate-controller-header".into()],
        ..Settings::default()
    };
    assert_eq!(ids(&select), ["duplicate-controller-header"]);
    let ignore = Settings {
        ignore: vec!["duplicate-controller-header".into()],
        ..Settings::default()
    };
    assert_eq!(ids(&ignore), ["redundant-forwarded-proto"]);
}
