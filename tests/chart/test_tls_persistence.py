"""The chart-generated CA and certificate (`webhook.tls.mode: chart`) survive `helm upgrade`.

On upgrade the chart reads the Secret already in the cluster with
`lookup "v1" "Secret" <release namespace> <name>` and reuses its three keys. Offline, Helm's
`lookup` always returns an empty map (helm-python-sdk renders with no cluster), so the
upgrade cannot be replayed as is. What these tests do instead, honestly:

1. They copy the chart to a temporary directory and replace that one `lookup` call -- the
   test asserts the exact expression occurs exactly once -- by
   `(.Files.Get "lookup-result.yaml" | fromYaml)`: the same map `lookup` returns (the whole
   Secret object, `data` base64-encoded), read from a file the test writes, or an empty map
   when there is no file, as with `lookup` on install. Every other line of every template is
   the chart's own, so the reuse logic (`snippet-guard.webhook.generatedTLS` in _tls.tpl)
   and the Secret / caBundle wiring are exercised unchanged.
2. First render: no file -> new CA and certificate. Second render with the first render's
   Secret as the lookup result -> byte-identical Secret data and caBundle.
3. Negative cases prove the test can fail: without a lookup result, or with a Secret made
   for other DNS names or missing a key, the material is regenerated.

Not covered offline: that the real `lookup` finds the Secret in a live cluster (that needs a
cluster; the API call itself is Helm's).
"""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml

from conftest import CHART, NAMESPACE, RELEASE, one, render

TEMPLATE = "templates/webhook.validatingwebhookconfiguration.yaml"
LOOKUP = '(lookup "v1" "Secret" .Release.Namespace $tlsSecretName)'
STAND_IN = '(.Files.Get "lookup-result.yaml" | fromYaml)'
SECRET_NAME = f"{RELEASE}-webhook-tls"
CHART_TLS = {"webhook": {"tls": {"mode": "chart"}}}


def with_chart_tls(values):
    merged = copy.deepcopy(values or {})
    merged.setdefault("webhook", {}).setdefault("tls", {})["mode"] = "chart"
    return merged


@pytest.fixture
def chart_with_lookup_stand_in(tmp_path):
    chart = tmp_path / "snippet-guard"
    shutil.copytree(CHART, chart)
    template = chart / TEMPLATE
    text = template.read_text()
    assert text.count(LOOKUP) == 1, "the chart must look the TLS Secret up exactly once"
    assert text.count("lookup ") == 1
    template.write_text(text.replace(LOOKUP, STAND_IN))
    return chart


def render_with_lookup(chart, existing_secret=None, values=None):
    result = chart / "lookup-result.yaml"
    if existing_secret is None:
        result.unlink(missing_ok=True)
    else:
        result.write_text(yaml.safe_dump(existing_secret))
    objects = render(with_chart_tls(values), chart=chart)
    secret = one(objects, "Secret", SECRET_NAME, NAMESPACE)
    bundles = {w["clientConfig"]["caBundle"] for w in one(objects, "ValidatingWebhookConfiguration")["webhooks"]}
    assert bundles == {secret["data"]["ca.crt"]}
    return secret


def test_second_render_keeps_the_first_renders_certificate(chart_with_lookup_stand_in):
    first = render_with_lookup(chart_with_lookup_stand_in)
    second = render_with_lookup(chart_with_lookup_stand_in, existing_secret=first)
    assert second["data"] == first["data"]
    # ...and a third upgrade still keeps it.
    assert render_with_lookup(chart_with_lookup_stand_in, existing_secret=second)["data"] == first["data"]


def test_upgrade_with_other_values_keeps_the_certificate(chart_with_lookup_stand_in):
    first = render_with_lookup(chart_with_lookup_stand_in)
    second = render_with_lookup(chart_with_lookup_stand_in, existing_secret=first, values={"webhook": {"mode": "warn", "replicaCount": 3}})
    assert second["data"] == first["data"]


def test_no_existing_secret_means_a_new_certificate(chart_with_lookup_stand_in):
    first = render_with_lookup(chart_with_lookup_stand_in)
    again = render_with_lookup(chart_with_lookup_stand_in)
    assert again["data"]["ca.crt"] != first["data"]["ca.crt"]
    assert again["data"]["tls.key"] != first["data"]["tls.key"]


def test_a_secret_for_other_dns_names_is_replaced(chart_with_lookup_stand_in):
    first = render_with_lookup(chart_with_lookup_stand_in)
    other = copy.deepcopy(first)
    other["metadata"]["annotations"]["snippet-guard.io/dns-names"] = "old-name.other.svc"
    assert render_with_lookup(chart_with_lookup_stand_in, existing_secret=other)["data"]["ca.crt"] != first["data"]["ca.crt"]


def test_an_incomplete_secret_is_replaced(chart_with_lookup_stand_in):
    first = render_with_lookup(chart_with_lookup_stand_in)
    broken = copy.deepcopy(first)
    del broken["data"]["tls.key"]
    assert render_with_lookup(chart_with_lookup_stand_in, existing_secret=broken)["data"]["ca.crt"] != first["data"]["ca.crt"]


def test_the_real_chart_renders_a_fresh_certificate_offline():
    # The premise of the stand-in: with no cluster, the real `lookup` finds nothing.
    a = one(render(CHART_TLS), "Secret", SECRET_NAME)["data"]["ca.crt"]
    b = one(render(CHART_TLS), "Secret", SECRET_NAME)["data"]["ca.crt"]
    assert a != b
