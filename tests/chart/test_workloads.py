"""Deployments, probes, security, Services, PDBs, NetworkPolicies, ServiceMonitor, NOTES."""

from __future__ import annotations

import json
import re
import tomllib

import yaml

from conftest import CHART, NAMESPACE, RELEASE, ROOT, container, find, one, render, render_notes


def pod_spec(objects, component):
    return one(objects, "Deployment", f"{RELEASE}-{component}")["spec"]["template"]["spec"]


def test_webhook_arguments_follow_the_binary_interface(default_objects):
    c = container(default_objects, "webhook")
    assert c["args"] == [
        "webhook",
        "--listen=0.0.0.0:8443",
        "--metrics-listen=0.0.0.0:9090",
        f"--tls-secret={NAMESPACE}/{RELEASE}-webhook-managed-tls",
        f"--webhook-configuration={RELEASE}",
        f"--san={RELEASE}-webhook",
        f"--san={RELEASE}-webhook.{NAMESPACE}",
        f"--san={RELEASE}-webhook.{NAMESPACE}.svc",
        f"--san={RELEASE}-webhook.{NAMESPACE}.svc.cluster.local",
        "--tls-cert-validity-days=365",
        "--tls-ca-validity-days=3650",
        "--tls-renew-before-days=30",
        "--mode=enforce",
        "--controller-configmap=ingress-nginx/ingress-nginx-controller",
        "--shutdown-delay=0",
        "--shutdown-timeout=15",
        "--controller=ingress-nginx",
        "--controller-version=1.15",
        "--annotations-prefix=nginx.ingress.kubernetes.io",
        "--log-format=json",
    ]
    assert "command" not in c  # the image's entrypoint is /snippet-guard


def test_webhook_shutdown_delay_fits_in_the_grace_period(default_objects):
    # A terminating pod keeps serving for the delay, then finishes requests in flight: the
    # kubelet must not kill it before both are over.
    assert pod_spec(default_objects, "webhook")["terminationGracePeriodSeconds"] == 10 + 15 + 5
    objects = render({"webhook": {"shutdownDelaySeconds": 3, "shutdownTimeoutSeconds": 7,
                                  "shutdownDelayMode": "process"}})
    args = container(objects, "webhook")["args"]
    assert "--shutdown-delay=3" in args and "--shutdown-timeout=7" in args
    assert "lifecycle" not in container(objects, "webhook")
    assert pod_spec(objects, "webhook")["terminationGracePeriodSeconds"] == 15


def test_webhook_shutdown_delay_is_the_native_prestop_sleep_where_supported(default_objects):
    # The Helm engine renders for a Kubernetes newer than 1.30 by default: `auto` picks the
    # kubelet's sleep action, and the process does not delay a second time.
    c = container(default_objects, "webhook")
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert "--shutdown-delay=0" in c["args"]
    forced = container(render({"webhook": {"shutdownDelayMode": "preStop", "shutdownDelaySeconds": 4}}), "webhook")
    assert forced["lifecycle"]["preStop"]["sleep"]["seconds"] == 4
    none = container(render({"webhook": {"shutdownDelaySeconds": 0}}), "webhook")
    assert "lifecycle" not in none and "--shutdown-delay=0" in none["args"]


def test_engine_settings_reach_both_components_alike():
    values = {"engine": {
        "controllerVersion": "1.12",
        "annotationsPrefix": "custom.example.com",
        "ingressClasses": ["public", "internal"],
        "select": ["redundant-forwarded-proto", "duplicate-controller-header"],
        "ignore": ["ignored-snippet"],
        "extraArgs": ["--no-annotation-suppressions"],
    }}
    objects = render(values)
    expected = [
        "--controller-version=1.12",
        "--annotations-prefix=custom.example.com",
        "--ingress-class=public",
        "--ingress-class=internal",
        "--select=redundant-forwarded-proto,duplicate-controller-header",
        "--ignore=ignored-snippet",
        "--no-annotation-suppressions",
    ]
    for component in ("webhook", "controller"):
        args = container(objects, component)["args"]
        engine = [a for a in args if a in expected]
        assert engine == expected, (component, args)


def test_f5_nginx_ingress_settings_reach_both_components_and_its_rbac_and_rules_only_when_enabled(default_objects):
    def nginx_org_rbac(objects):
        return [r for o in find(objects, "ClusterRole") for r in o.get("rules", [])
                if "k8s.nginx.org" in r.get("apiGroups", [])]

    def hooks(objects):
        return {h["name"]: h for h in one(objects, "ValidatingWebhookConfiguration")["webhooks"]}

    assert not nginx_org_rbac(default_objects)
    assert "nginx-org.snippet-guard.io" not in hooks(default_objects)
    for component in ("webhook", "controller"):
        args = container(default_objects, component)["args"]
        assert "--controller=ingress-nginx" in args
        assert not any(a.startswith("--nic-") for a in args), args

    objects = render({"f5NginxIngress": {
        "enabled": True, "namespace": "nic", "configMapName": "nic-config", "version": "5.4",
        "enableSnippets": "true", "ingressClasses": ["nginx-plus"]}})
    expected = [
        "--controller=ingress-nginx,f5-nginx-ingress",
        "--nic-version=5.4",
        "--nic-configmap=nic/nic-config",
        "--nic-enable-snippets=true",
        "--nic-ingress-class=nginx-plus",
    ]
    for component in ("webhook", "controller"):
        args = container(objects, component)["args"]
        assert [a for a in args if a in expected] == expected, (component, args)
    rules = nginx_org_rbac(objects)
    assert rules == [{"apiGroups": ["k8s.nginx.org"],
                      "resources": ["virtualservers", "virtualserverroutes", "policies"],
                      "verbs": ["get", "list", "watch"]}]
    hook = hooks(objects)["nginx-org.snippet-guard.io"]
    assert hook["rules"][0]["apiGroups"] == ["k8s.nginx.org"]
    assert hook["rules"][0]["resources"] == ["virtualservers", "virtualserverroutes", "policies"]
    # Its ConfigMap is readable by name, like ingress-nginx's.
    names = [r.get("resourceNames") for o in find(objects, "ClusterRole") for r in o.get("rules", [])
             if r.get("resources") == ["configmaps"] and r.get("resourceNames")]
    assert names and all("nic-config" in n for n in names), names

    only_nic = render({"ingressNginx": {"enabled": False}, "f5NginxIngress": {"enabled": True}})
    assert "--controller=f5-nginx-ingress" in container(only_nic, "controller")["args"]


def test_nginx_gateway_fabric_settings_rbac_and_rules_only_when_enabled(default_objects):
    def gateway_rbac(objects):
        return [r for o in find(objects, "ClusterRole") for r in o.get("rules", [])
                if {"gateway.nginx.org", "gateway.networking.k8s.io"} & set(r.get("apiGroups", []))]

    hooks = lambda objects: {h["name"]: h for h in one(objects, "ValidatingWebhookConfiguration")["webhooks"]}
    assert not gateway_rbac(default_objects)
    assert "gateway-nginx-org.snippet-guard.io" not in hooks(default_objects)
    objects = render({"nginxGatewayFabric": {"enabled": True, "enableSnippets": "false"}})
    for component in ("webhook", "controller"):
        args = container(objects, component)["args"]
        assert "--controller=ingress-nginx,nginx-gateway-fabric" in args, args
        assert "--ngf-snippets=false" in args, args
    assert gateway_rbac(objects) == [
        {"apiGroups": ["gateway.nginx.org"], "resources": ["snippetsfilters", "snippetspolicies"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes", "grpcroutes"],
         "verbs": ["get", "list", "watch"]},
    ]
    rules = hooks(objects)["gateway-nginx-org.snippet-guard.io"]["rules"]
    assert [r["resources"] for r in rules] == [["snippetsfilters", "snippetspolicies"], ["httproutes", "grpcroutes"]]


def test_the_schema_knows_every_rule_and_no_other():
    schema = json.loads((CHART / "values.schema.json").read_text())
    enum = schema["properties"]["engine"]["properties"]["select"]["items"]["enum"]
    rules = sorted(re.findall(r'id: "([a-z-]+)"', "".join(
        p.read_text() for p in (ROOT / "crates" / "engine" / "src" / "rules").glob("*.rs"))))
    assert sorted(enum) == rules
    assert schema["properties"]["engine"]["properties"]["ignore"]["items"]["enum"] == enum


def test_webhook_optional_flags():
    objects = render({"webhook": {"onlyNewFindings": True, "annotationSuppressions": False, "mode": "warn"},
                      "ingressNginx": {"namespace": "edge", "configMapName": "nginx-conf"}})
    args = container(objects, "webhook")["args"]
    assert "--only-new-findings" in args
    assert "--no-annotation-suppressions" in args
    assert "--mode=warn" in args
    assert "--controller-configmap=edge/nginx-conf" in args


def test_controller_arguments_follow_the_binary_interface(default_objects):
    c = container(default_objects, "controller")
    assert c["args"] == [
        "controller",
        "--listen=0.0.0.0:8080",
        "--controller-configmap=ingress-nginx/ingress-nginx-controller",
        "--exclude-namespace-selector=snippet-guard.io/ignore=true",
        f"--lease-namespace={NAMESPACE}",
        f"--lease-name={RELEASE}-controller",
        f"--state-configmap={RELEASE}-controller-state",
        "--controller=ingress-nginx",
        "--controller-version=1.15",
        "--annotations-prefix=nginx.ingress.kubernetes.io",
        "--log-format=json",
    ]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_controller_namespaces_and_selector():
    objects = render({"controller": {"namespaces": ["team-a", "team-b"], "excludeNamespaceSelector": ""}})
    args = container(objects, "controller")["args"]
    assert args[args.index("--namespace=team-a") + 1] == "--namespace=team-b"
    assert not any(a.startswith("--exclude-namespace-selector") for a in args)


def test_rust_log_from_logging_env_filter():
    objects = render({"logging": {"envFilter": "debug,kube=info"}})
    for component in ("webhook", "controller"):
        env = {e["name"]: e.get("value") for e in container(objects, component)["env"]}
        assert env["RUST_LOG"] == "debug,kube=info"


def test_probes(default_objects):
    webhook = container(default_objects, "webhook")
    assert webhook["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert webhook["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    controller = container(default_objects, "controller")
    assert controller["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert controller["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in controller["ports"]} == {"http": 8080}


def test_security_context_and_resources(default_objects):
    for component in ("webhook", "controller"):
        spec = pod_spec(default_objects, component)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = spec["containers"][0]["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "privileged" not in sc
        resources = spec["containers"][0]["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert set(resources["limits"]) == {"cpu", "memory"}
        assert not spec.get("hostNetwork") and not spec.get("hostPID")


def test_service_account_token_only_where_needed(default_objects):
    for component in ("webhook", "controller"):
        sa = one(default_objects, "ServiceAccount", f"{RELEASE}-{component}", NAMESPACE)
        assert sa["automountServiceAccountToken"] is False
        spec = pod_spec(default_objects, component)
        assert spec["serviceAccountName"] == f"{RELEASE}-{component}"
        assert spec["automountServiceAccountToken"] is False
        (volume,) = [v for v in spec["volumes"] if "projected" in v]
        sources = volume["projected"]["sources"]
        assert sources[0]["serviceAccountToken"]["expirationSeconds"] <= 3607  # short-lived, bound
        mounts = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert mounts == [{"name": volume["name"], "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}]


def test_replicas_pdb_and_spreading(default_objects):
    for component in ("webhook", "controller"):
        deployment = one(default_objects, "Deployment", f"{RELEASE}-{component}")
        assert deployment["spec"]["replicas"] == 2
        pdb = one(default_objects, "PodDisruptionBudget", f"{RELEASE}-{component}", NAMESPACE)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    spread = pod_spec(default_objects, "webhook")["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"


def test_single_replica_has_no_pdb():
    objects = render(yaml.safe_load((CHART / "ci" / "single-replica-values.yaml").read_text()))
    assert find(objects, "PodDisruptionBudget") == []
    assert one(objects, "Deployment", f"{RELEASE}-webhook")["spec"]["replicas"] == 1


def test_hard_anti_affinity_and_custom_affinity():
    hard = pod_spec(render({"webhook": {"podAntiAffinity": "hard"}}), "webhook")["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard
    custom = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}}
    assert pod_spec(render({"controller": {"affinity": custom}}), "controller")["affinity"] == custom
    assert "affinity" not in pod_spec(render({"controller": {"podAntiAffinity": "none"}}), "controller")


def test_image_defaults_to_the_app_version_which_is_the_crate_version(default_objects):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    crate = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == crate["version"]
    for component in ("webhook", "controller"):
        assert container(default_objects, component)["image"] == f"ghcr.io/snippet-guard/snippet-guard:{chart['appVersion']}"
    digest = "sha256:" + "a" * 64
    pinned = render({"image": {"digest": digest, "tag": "ignored"}})
    assert container(pinned, "webhook")["image"] == f"ghcr.io/snippet-guard/snippet-guard@{digest}"


def test_metrics_services_and_service_monitor():
    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    monitor = one(objects, "ServiceMonitor", RELEASE, NAMESPACE)
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selected = [s for s in find(objects, "Service") if all(
        s["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())]
    assert sorted(s["metadata"]["name"] for s in selected) == [f"{RELEASE}-controller-metrics", f"{RELEASE}-webhook-metrics"]
    (endpoint,) = monitor["spec"]["endpoints"]
    for service in selected:
        (port,) = service["spec"]["ports"]
        assert port["name"] == endpoint["port"]
        component = service["spec"]["selector"]["app.kubernetes.io/component"]
        target = {p["name"]: p["containerPort"] for p in container(objects, component)["ports"]}
        assert port["targetPort"] in target
    assert target  # the loop ran
    assert find(render({}), "ServiceMonitor") == []


def test_network_policies():
    objects = render({"networkPolicy": {"enabled": True}})
    webhook = one(objects, "NetworkPolicy", f"{RELEASE}-webhook", NAMESPACE)
    api_rule, metrics_rule = webhook["spec"]["ingress"]
    assert api_rule["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert "from" not in api_rule  # the API server may come from anywhere
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_rule["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    controller = one(objects, "NetworkPolicy", f"{RELEASE}-controller", NAMESPACE)
    (rule,) = controller["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    closed = one(render({"networkPolicy": {"enabled": True, "metricsFrom": []}}), "NetworkPolicy", f"{RELEASE}-controller")
    assert closed["spec"]["ingress"] == []
    assert find(render({}), "NetworkPolicy") == []


def test_every_namespaced_object_names_its_namespace(default_objects):
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}
    for obj in default_objects:
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] in (NAMESPACE, "ingress-nginx"), obj["metadata"]


def test_notes_tell_how_to_see_findings():
    notes = render_notes()
    assert "kubectl get events -A --field-selector reason=RedundantForwardedProto" in notes
    # Every rule's Event reason (rule id in PascalCase; one crates/engine/src/rules/<rule_id>.rs per rule).
    rule_files = [p.stem for p in (ROOT / "crates" / "engine" / "src" / "rules").glob("*.rs") if p.stem != "mod"]
    assert "redundant_forwarded_proto" in rule_files
    for stem in rule_files:
        reason = "".join(part.capitalize() for part in stem.split("_"))
        assert reason in notes, f"NOTES.txt (snippet-guard.eventReasons in _helpers.tpl) lacks {reason}"
    assert "mode=enforce" in notes and "failurePolicy=Ignore" in notes
    assert "mode=warn" in render_notes({"webhook": {"mode": "warn"}})
