"""RBAC: the README table (between <!-- rbac:start --> and <!-- rbac:end -->) is exactly what
the chart renders with default values; nothing uses `*`; every role is bound to its own
component's ServiceAccount only."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conftest import CI_VALUES, NAMESPACE, RELEASE, ROOT, ci_values, container, find, one, render

ROLE_KINDS = ("Role", "ClusterRole")
# README placeholders -> the default values' namespaces (None: cluster-wide).
NAMESPACES = {"cluster-wide": None, "release namespace": NAMESPACE}
# README placeholders of resource names -> their default values.
NAMES = {"<fullname>": RELEASE, "<ingressNginx.configMapName>": "ingress-nginx-controller"}


def _items(cell: str) -> tuple[str, ...]:
    """"`get`, `list`" -> ("get", "list"); "`\"\"` (core)" -> ("",)."""
    return tuple(sorted(m.strip('"') for m in re.findall(r"`([^`]*)`", cell)))


def readme_rbac_rows() -> Counter:
    readme = (ROOT / "README.md").read_text()
    body = readme[readme.index("<!-- rbac:start -->"): readme.index("<!-- rbac:end -->")]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["Component", "Kind", "Namespace", "API group", "Resources", "Verbs", "Resource names"]
    rows = Counter()
    for line in lines[2:]:
        component, kind, namespace, group, resources, verbs, names = (c.strip() for c in line.strip("|").split("|"))
        for placeholder, value in NAMES.items():
            names = names.replace(placeholder, value)
        names = _items(names)
        rows[(component, kind, NAMESPACES[namespace], _items(group), _items(resources), _items(verbs), names)] += 1
    assert rows, "README RBAC table is empty"
    return rows


def rendered_rbac_rows(objects) -> Counter:
    rows = Counter()
    for obj in objects:
        if obj["kind"] not in ROLE_KINDS:
            continue
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        namespace = obj["metadata"].get("namespace")
        for rule in obj["rules"]:
            rows[(
                component,
                obj["kind"],
                namespace,
                tuple(sorted(rule["apiGroups"])),
                tuple(sorted(rule["resources"])),
                tuple(sorted(rule["verbs"])),
                tuple(sorted(rule.get("resourceNames", []))),
            )] += 1
    return rows


def test_readme_table_parses_placeholders():
    rows = readme_rbac_rows()
    assert any(r[2] is None for r in rows) and any(r[2] == NAMESPACE for r in rows)
    assert any(r[6] == ("ingress-nginx-controller",) for r in rows)


def test_readme_rbac_table_matches_the_rendered_roles(default_objects):
    assert rendered_rbac_rows(default_objects) == readme_rbac_rows()


def test_the_documented_rights_are_the_ones_the_binary_needs(default_objects):
    rows = rendered_rbac_rows(default_objects)
    controller = {(r[3], r[4], r[5]) for r in rows if r[0] == "controller"}
    assert (("networking.k8s.io",), ("ingressclasses", "ingresses"), ("get", "list", "watch")) in controller
    assert (("",), ("configmaps",), ("get", "list", "watch")) in controller
    assert (("events.k8s.io",), ("events",), ("create", "patch")) in controller
    # --exclude-namespace-selector (set by default) watches namespaces, metadata only.
    assert (("",), ("namespaces",), ("list", "watch")) in controller
    # kube-lease-manager: get, create when missing, patch to take/renew/release.
    leases = {r[5] for r in rows if r[4] == ("leases",)}
    assert set().union(*leases) == {"get", "create", "patch"}
    # Handover: read and update the one state ConfigMap the chart creates.
    assert ("Role", NAMESPACE, ("configmaps",), ("get", "update"), (f"{RELEASE}-controller-state",)) in {
        (r[1], r[2], r[4], r[5], r[6]) for r in rows if r[0] == "controller"}
    webhook = [r for r in rows if r[0] == "webhook"]
    assert sorted((r[1], r[2], r[4], r[5], r[6]) for r in webhook) == [
        ("ClusterRole", None, ("configmaps",), ("get", "list", "watch"), ("ingress-nginx-controller",)),
        # Its IngressClass watch: which Ingresses ingress-nginx serves.
        ("ClusterRole", None, ("ingressclasses",), ("list", "watch"), ()),
        # The self-managed certificate: the caBundle of its own configuration, its own Secret.
        ("ClusterRole", None, ("validatingwebhookconfigurations",), ("get", "update"), (RELEASE,)),
        ("Role", NAMESPACE, ("secrets",), ("get", "update"), (f"{RELEASE}-webhook-managed-tls",)),
    ]


def _configmap_rules(objects, component):
    return [
        (o["kind"], o["metadata"].get("namespace"), tuple(r.get("resourceNames", ())))
        for o in objects if o["kind"] == "ClusterRole"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        for r in o["rules"] if "configmaps" in r["resources"]
    ]


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_nothing_lands_in_a_namespace_other_than_the_release_one(path):
    # helm install must work before ingress-nginx exists: no namespaced object the chart creates
    # may live in the ingress-nginx (or a proxy-set-headers) namespace.
    objects = render(ci_values(path))
    namespaces = {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]}
    assert namespaces <= {NAMESPACE}, namespaces


def test_configmap_reads_follow_the_configured_names():
    objects = render({"ingressNginx": {"namespace": "edge", "configMapName": "nginx-conf"}})
    assert _configmap_rules(objects, "webhook") == [("ClusterRole", None, ("nginx-conf",))]
    # The controller's default is an unrestricted cluster-wide read.
    assert _configmap_rules(objects, "controller") == [("ClusterRole", None, ())]


def test_no_namespace_rights_without_an_exclude_selector():
    objects = render({"controller": {"excludeNamespaceSelector": ""}})
    rules = [r for o in objects if o["kind"] in ROLE_KINDS for r in o["rules"]]
    assert not any("namespaces" in r["resources"] for r in rules)


def test_lease_role_matches_the_controller_lease_arguments(default_objects):
    args = container(default_objects, "controller")["args"]
    lease_ns = next(a.split("=", 1)[1] for a in args if a.startswith("--lease-namespace="))
    lease_name = next(a.split("=", 1)[1] for a in args if a.startswith("--lease-name="))
    role = one(default_objects, "Role", f"{RELEASE}-controller-lease", lease_ns)
    named = [r for r in role["rules"] if r.get("resourceNames") and r["resources"] == ["leases"]]
    assert named and all(r["resourceNames"] == [lease_name] for r in named)
    state = next(a.split("=", 1)[1] for a in args if a.startswith("--state-configmap="))
    (rule,) = [r for r in role["rules"] if r["resources"] == ["configmaps"]]
    assert rule == {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [state], "verbs": ["get", "update"]}
    # ...and the chart creates it, without data (the controller writes it).
    configmap = one(default_objects, "ConfigMap", state, lease_ns)
    assert "data" not in configmap


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_no_wildcards_and_bindings_only_to_own_service_account(path):
    objects = render(ci_values(path))
    roles = [o for o in objects if o["kind"] in ROLE_KINDS]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            if "secrets" in rule["resources"]:
                # Only the webhook's own self-managed certificate, by name; never list or watch.
                assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get", "update"], rule
                assert rule["resourceNames"] == [f"{RELEASE}-webhook-managed-tls"], rule
    for role in roles:
        kind = role["kind"] + "Binding"
        bindings = [b for b in find(objects, kind) if b["roleRef"]["name"] == role["metadata"]["name"]
                    and b["metadata"].get("namespace") == role["metadata"].get("namespace")]
        assert len(bindings) == 1, role["metadata"]
        component = role["metadata"]["labels"]["app.kubernetes.io/component"]
        assert bindings[0]["roleRef"]["kind"] == role["kind"]
        assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-{component}", "namespace": NAMESPACE}]
        one(objects, "ServiceAccount", f"{RELEASE}-{component}", NAMESPACE)


@pytest.mark.parametrize("reference", ["shared/custom-headers", "custom-headers"])
def test_name_scoped_configmap_reads(reference):
    # A proxy-set-headers ConfigMap, in another namespace or in ingress-nginx's: one more name.
    objects = render({
        "ingressNginx": {"proxySetHeadersConfigMapName": reference},
        "controller": {"rbac": {"configMapsClusterWide": False}},
    })
    names = ("custom-headers", "ingress-nginx-controller")
    assert _configmap_rules(objects, "controller") == [("ClusterRole", None, names)]
    assert _configmap_rules(objects, "webhook") == [("ClusterRole", None, names)]
    assert not find(objects, "Role", namespace="shared") + find(objects, "Role", namespace="ingress-nginx")


def test_the_same_name_twice_is_listed_once():
    objects = render({"ingressNginx": {"proxySetHeadersConfigMapName": "other/ingress-nginx-controller"}})
    assert _configmap_rules(objects, "webhook") == [("ClusterRole", None, ("ingress-nginx-controller",))]


def test_cluster_wide_configmap_reads_for_the_webhook():
    rows = rendered_rbac_rows(render({"webhook": {"rbac": {"configMapsClusterWide": True}}}))
    webhook = [(r[1], r[2], r[4], r[6]) for r in rows if r[0] == "webhook" and r[4] == ("configmaps",)]
    assert webhook == [("ClusterRole", None, ("configmaps",), ())]


def test_rbac_create_false_renders_no_rbac():
    objects = render({"rbac": {"create": False}})
    assert not [o for o in objects if o["kind"] in ROLE_KINDS + ("RoleBinding", "ClusterRoleBinding")]
