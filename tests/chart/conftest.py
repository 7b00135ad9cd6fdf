"""Shared helpers for the chart tests: render and lint charts/snippet-guard with the real
Helm engine (helm-python-sdk), offline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "snippet-guard"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "snippet-guard"
NAMESPACE = "snippet-guard"


def load_script(name: str):
    """Import scripts/<name>.py (the file names have dashes) as a module."""
    path = ROOT / "scripts" / f"{name}.py"
    module_name = name.replace("-", "_")
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


render_manifests = load_script("render-manifests")


def ci_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE, chart: Path = CHART) -> list[dict[str, Any]]:
    """Render with the real Helm engine -> list of Kubernetes objects (dicts)."""
    import helm_python

    with helm_python.Chart.load(str(chart)) as loaded:
        rendered = loaded.render(values or {}, name=name, namespace=namespace)
    return [doc["object"] for doc in render_manifests.split_documents(rendered)]


def render_notes(values: dict[str, Any] | None = None) -> str:
    import helm_python

    with helm_python.Chart.load(str(CHART)) as loaded:
        rendered = loaded.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        meta = obj.get("metadata", {})
        if obj["kind"] != kind:
            continue
        if name is not None and meta.get("name") != name:
            continue
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        out.append(obj)
    return out


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    deployment = one(objects, "Deployment", f"{RELEASE}-{component}")
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="session")
def default_objects() -> list[dict[str, Any]]:
    return render({})


@pytest.fixture(params=CI_VALUES, ids=lambda p: p.name, scope="session")
def ci_case(request) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(ci file name, its values, the objects it renders)."""
    values = ci_values(request.param)
    return request.param.name, values, render(values)
