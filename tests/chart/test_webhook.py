"""The ValidatingWebhookConfiguration and the webhook's certificate, as rendered."""

from __future__ import annotations

import base64
import datetime

import helm_python
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import CHART, NAMESPACE, RELEASE, container, find, one, render

SERVICE_DNS = [
    f"{RELEASE}-webhook",
    f"{RELEASE}-webhook.{NAMESPACE}",
    f"{RELEASE}-webhook.{NAMESPACE}.svc",
    f"{RELEASE}-webhook.{NAMESPACE}.svc.cluster.local",
]


# The chart-generated certificate (the default is the webhook's self-managed one).
CHART_TLS = {"webhook": {"tls": {"mode": "chart"}}}


@pytest.fixture(scope="module")
def chart_tls_objects():
    return render(CHART_TLS)


def webhooks(objects):
    vwc = one(objects, "ValidatingWebhookConfiguration", RELEASE)
    return {w["name"]: w for w in vwc["webhooks"]}


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels AND every matchExpression)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def namespace_labels(name: str, **extra: str) -> dict:
    # The API server sets kubernetes.io/metadata.name on every namespace.
    return {"kubernetes.io/metadata.name": name, **extra}


def test_the_selector_helper_itself():
    sel = {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}, {"key": "b", "operator": "In", "values": ["y"]}]}
    assert selects(sel, {"b": "y"})
    assert not selects(sel, {"a": "x", "b": "y"})
    assert not selects(sel, {"a": "z"})


def test_two_webhooks_with_the_fixed_contract(default_objects):
    hooks = webhooks(default_objects)
    assert set(hooks) == {"ingresses.snippet-guard.io", "configmaps.snippet-guard.io"}
    for hook in hooks.values():
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "None"
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 5
        assert hook["clientConfig"]["service"] == {
            "name": f"{RELEASE}-webhook",
            "namespace": NAMESPACE,
            "path": "/validate",
            "port": 443,
        }
        (rule,) = hook["rules"]
        assert rule["operations"] == ["CREATE", "UPDATE"]
        assert rule["scope"] == "Namespaced"
    assert hooks["ingresses.snippet-guard.io"]["rules"][0]["apiGroups"] == ["networking.k8s.io"]
    assert hooks["ingresses.snippet-guard.io"]["rules"][0]["resources"] == ["ingresses"]
    assert hooks["configmaps.snippet-guard.io"]["rules"][0]["apiGroups"] == [""]
    assert hooks["configmaps.snippet-guard.io"]["rules"][0]["resources"] == ["configmaps"]


def test_the_webhook_service_reaches_the_webhook_pods(default_objects):
    service = one(default_objects, "Service", f"{RELEASE}-webhook")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443 and port["targetPort"] == "https"
    pod = one(default_objects, "Deployment", f"{RELEASE}-webhook")["spec"]["template"]
    assert selects({"matchLabels": service["spec"]["selector"]}, pod["metadata"]["labels"])
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports == {"https": 8443, "metrics": 9090}


def test_ingress_webhook_namespace_selector(default_objects):
    selector = webhooks(default_objects)["ingresses.snippet-guard.io"]["namespaceSelector"]
    assert not selects(selector, namespace_labels("kube-system"))
    assert not selects(selector, namespace_labels(NAMESPACE))
    assert not selects(selector, namespace_labels("team-a", **{"snippet-guard.io/ignore": "true"}))
    assert selects(selector, namespace_labels("team-a"))
    assert selects(selector, namespace_labels("team-a", **{"snippet-guard.io/ignore": "false"}))
    assert selects(selector, namespace_labels("ingress-nginx"))


def test_release_namespace_is_skipped_whatever_it_is_called():
    selector = webhooks(render({}, namespace="platform-lint"))["ingresses.snippet-guard.io"]["namespaceSelector"]
    assert not selects(selector, namespace_labels("platform-lint"))
    assert selects(selector, namespace_labels(NAMESPACE))


def test_extra_excluded_namespaces_and_expressions():
    objects = render({"webhook": {"namespaceSelector": {
        "excludeNamespaces": ["monitoring"],
        "extraMatchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["system"]}],
    }}})
    selector = webhooks(objects)["ingresses.snippet-guard.io"]["namespaceSelector"]
    assert not selects(selector, namespace_labels("monitoring"))
    assert not selects(selector, namespace_labels("apps", tier="system"))
    assert selects(selector, namespace_labels("apps", tier="web"))
    assert not selects(selector, namespace_labels("kube-system"))


def test_configmap_webhook_only_for_the_controller_configmaps_by_default(default_objects):
    hook = webhooks(default_objects)["configmaps.snippet-guard.io"]
    assert selects(hook["namespaceSelector"], namespace_labels("ingress-nginx"))
    assert not selects(hook["namespaceSelector"], namespace_labels("team-a"))
    assert not selects(hook["namespaceSelector"], namespace_labels("ingress-nginx", **{"snippet-guard.io/ignore": "true"}))
    assert "objectSelector" not in hook
    assert hook["matchConditions"] == [{
        "name": "ingress-nginx-configmaps",
        "expression": "(request.namespace == 'ingress-nginx' && object.metadata.name == 'ingress-nginx-controller')",
    }]


def test_configmap_webhook_adds_the_proxy_set_headers_configmap():
    same_ns = webhooks(render({"ingressNginx": {"proxySetHeadersConfigMapName": "custom-headers"}}))["configmaps.snippet-guard.io"]
    assert same_ns["matchConditions"][0]["expression"] == (
        "(request.namespace == 'ingress-nginx' && object.metadata.name == 'ingress-nginx-controller')"
        " || (request.namespace == 'ingress-nginx' && object.metadata.name == 'custom-headers')"
    )
    other_ns = webhooks(render({"ingressNginx": {"namespace": "edge", "configMapName": "nginx", "proxySetHeadersConfigMapName": "shared/headers"}}))
    hook = other_ns["configmaps.snippet-guard.io"]
    assert hook["matchConditions"][0]["expression"] == (
        "(request.namespace == 'edge' && object.metadata.name == 'nginx')"
        " || (request.namespace == 'shared' && object.metadata.name == 'headers')"
    )
    assert selects(hook["namespaceSelector"], namespace_labels("edge"))
    assert selects(hook["namespaceSelector"], namespace_labels("shared"))
    assert not selects(hook["namespaceSelector"], namespace_labels("ingress-nginx"))


def test_configmap_scope_variants():
    by_object = webhooks(render({"webhook": {"configMaps": {"scope": "objectSelector"}}}))["configmaps.snippet-guard.io"]
    assert by_object["objectSelector"] == {"matchLabels": {"snippet-guard.io/validate": "true"}}
    assert "matchConditions" not in by_object
    assert not selects(by_object["namespaceSelector"], namespace_labels("kube-system"))

    every = webhooks(render({"webhook": {"configMaps": {"scope": "all"}}}))["configmaps.snippet-guard.io"]
    assert "objectSelector" not in every and "matchConditions" not in every
    assert selects(every["namespaceSelector"], namespace_labels("team-a"))

    assert set(webhooks(render({"webhook": {"configMaps": {"scope": "none"}}}))) == {"ingresses.snippet-guard.io"}


def test_failure_policy_timeout_and_mode_are_values():
    objects = render({"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 3, "mode": "audit"}})
    for hook in webhooks(objects).values():
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 3
    assert "--mode=audit" in container(objects, "webhook")["args"]


def tls_secret(objects):
    return one(objects, "Secret", f"{RELEASE}-webhook-tls", NAMESPACE)


def test_ca_bundle_is_the_ca_in_the_secret(chart_tls_objects):
    secret = tls_secret(chart_tls_objects)
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    for hook in webhooks(chart_tls_objects).values():
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")


def check_tls_material(data: dict, dns_names: list[str], min_days_left: int) -> None:
    """CA is a CA, the serving cert is signed by it for the Service's names, key matches."""
    ca = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(base64.b64decode(data["tls.key"]), password=None)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(dns_names)
    now = datetime.datetime.now(datetime.timezone.utc)
    for c in (ca, cert):
        assert c.not_valid_before_utc <= now + datetime.timedelta(minutes=5)
        assert c.not_valid_after_utc >= now + datetime.timedelta(days=min_days_left)


def test_generated_certificate_is_valid_for_the_service(chart_tls_objects):
    secret = tls_secret(chart_tls_objects)
    check_tls_material(secret["data"], SERVICE_DNS, min_days_left=3000)
    assert secret["metadata"]["annotations"]["snippet-guard.io/dns-names"] == ",".join(SERVICE_DNS)


def test_webhook_mounts_the_tls_secret_as_a_directory(chart_tls_objects):
    deployment = one(chart_tls_objects, "Deployment", f"{RELEASE}-webhook")
    pod = deployment["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": "/etc/snippet-guard/tls", "readOnly": True}  # no subPath
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == f"{RELEASE}-webhook-tls"
    assert "items" not in volume["secret"]


def test_cert_manager_variant():
    objects = render({"certManager": {"enabled": True}})
    vwc = one(objects, "ValidatingWebhookConfiguration", RELEASE)
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{RELEASE}-webhook"
    for hook in vwc["webhooks"]:
        assert "caBundle" not in hook["clientConfig"]
    assert find(objects, "Secret") == []  # cert-manager writes it
    certificate = one(objects, "Certificate", f"{RELEASE}-webhook", NAMESPACE)
    assert certificate["spec"]["secretName"] == f"{RELEASE}-webhook-tls"
    assert sorted(certificate["spec"]["dnsNames"]) == sorted(SERVICE_DNS)
    issuer = one(objects, "Issuer", certificate["spec"]["issuerRef"]["name"], NAMESPACE)
    assert issuer["spec"] == {"selfSigned": {}}
    pod = one(objects, "Deployment", f"{RELEASE}-webhook")["spec"]["template"]["spec"]
    assert [v for v in pod["volumes"] if v["name"] == "tls"][0]["secret"]["secretName"] == certificate["spec"]["secretName"]


def test_cert_manager_with_an_existing_issuer():
    objects = render({"certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}})
    assert find(objects, "Issuer") == []
    certificate = one(objects, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_existing_secret_variant():
    objects = render({"webhook": {"tls": {"existingSecret": "my-tls", "caBundle": "Q0E="}}})
    assert find(objects, "Secret") == []
    for hook in webhooks(objects).values():
        assert hook["clientConfig"]["caBundle"] == "Q0E="
    pod = one(objects, "Deployment", f"{RELEASE}-webhook")["spec"]["template"]["spec"]
    assert [v for v in pod["volumes"] if v["name"] == "tls"][0]["secret"]["secretName"] == "my-tls"


def test_existing_secret_requires_a_ca_bundle():
    with pytest.raises(helm_python.HelmRenderError, match="caBundle"):
        render({"webhook": {"tls": {"existingSecret": "my-tls"}}})


def test_webhook_disabled_renders_no_webhook_objects():
    objects = render({"webhook": {"enabled": False}})
    assert find(objects, "ValidatingWebhookConfiguration") == []
    assert find(objects, "Secret") == []
    assert all(o["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "webhook" for o in objects)
    assert find(objects, "Deployment", f"{RELEASE}-controller")


# The default: the webhook manages its own certificate (src/k8s/managed_tls.rs).

MANAGED_SECRET = f"{RELEASE}-webhook-managed-tls"


def rendered_text(values=None):
    with helm_python.Chart.load(str(CHART)) as loaded:
        rendered = loaded.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return {path: text for path, text in rendered.items()}


def test_self_managed_mode_renders_identically_twice():
    first, second = rendered_text(), rendered_text()
    assert first == second
    # ...which the chart-generated mode does not (the test can fail).
    assert rendered_text(CHART_TLS) != rendered_text(CHART_TLS)


def test_self_managed_mode_renders_no_key_no_ca_bundle_and_an_empty_secret(default_objects):
    secret = one(default_objects, "Secret", MANAGED_SECRET, NAMESPACE)
    assert secret["type"] == "Opaque"
    assert "data" not in secret and "stringData" not in secret  # the webhook writes it
    assert [s["metadata"]["name"] for s in find(default_objects, "Secret")] == [MANAGED_SECRET]
    for hook in webhooks(default_objects).values():
        assert "caBundle" not in hook["clientConfig"]
        assert hook["failurePolicy"] == "Ignore"  # writes pass while the first certificate is made


def test_self_managed_mode_arguments_and_no_tls_volume(default_objects):
    args = container(default_objects, "webhook")["args"]
    assert f"--tls-secret={NAMESPACE}/{MANAGED_SECRET}" in args
    assert f"--webhook-configuration={RELEASE}" in args
    assert sorted(a.split("=", 1)[1] for a in args if a.startswith("--san=")) == sorted(SERVICE_DNS)
    assert "--tls-cert-validity-days=365" in args and "--tls-ca-validity-days=3650" in args
    assert "--tls-renew-before-days=30" in args
    assert not any(a.startswith("--tls-cert-file") for a in args)
    pod = one(default_objects, "Deployment", f"{RELEASE}-webhook")["spec"]["template"]["spec"]
    assert all(v["name"] != "tls" for v in pod["volumes"])
    one(default_objects, "ValidatingWebhookConfiguration", RELEASE)  # the name it patches


def test_self_managed_mode_rbac_names_the_secret_and_the_configuration(default_objects):
    role = one(default_objects, "Role", f"{RELEASE}-webhook-tls", NAMESPACE)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [MANAGED_SECRET], "verbs": ["get", "update"]}
    ]
    cluster_role = one(default_objects, "ClusterRole", f"{RELEASE}-webhook-ca-bundle")
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [RELEASE],
            "verbs": ["get", "update"],
        }
    ]
    for kind, name in (("RoleBinding", f"{RELEASE}-webhook-tls"), ("ClusterRoleBinding", f"{RELEASE}-webhook-ca-bundle")):
        binding = one(default_objects, kind, name)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-webhook", "namespace": NAMESPACE}]


def test_other_modes_render_no_certificate_rbac():
    for values in (CHART_TLS, {"certManager": {"enabled": True}}, {"webhook": {"tls": {"existingSecret": "my-tls", "caBundle": "Q0E="}}}):
        objects = render(values)
        assert find(objects, "Role", f"{RELEASE}-webhook-tls") == []
        assert find(objects, "ClusterRole", f"{RELEASE}-webhook-ca-bundle") == []
        assert "--tls-cert-file=/etc/snippet-guard/tls/tls.crt" in container(objects, "webhook")["args"]
