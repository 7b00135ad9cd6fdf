"""The Dockerfile builds the image the chart runs (it cannot be built here: no engine)."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import CHART, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1].strip() for line in joined.splitlines() if line.upper().startswith(name + " ")]


def test_multi_stage_build_from_the_pinned_images():
    assert instructions("FROM") == ["rust:1.95-slim-bookworm AS builder", "gcr.io/distroless/cc-debian12:nonroot"]
    (run,) = [r for r in instructions("RUN") if "cargo build" in r]
    assert "cargo build --profile dist --locked --bin snippet-guard" in run


def test_builds_the_stripped_dist_profile_and_copies_its_binary():
    profiles = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]
    # dist: the release build without symbols or debug info; release keeps its line tables.
    assert profiles["dist"] == {"inherits": "release", "strip": True, "debug": False}
    assert profiles["release"].get("strip", False) is False
    (run,) = [r for r in instructions("RUN") if "cargo build" in r]
    profile = re.search(r"--profile (\S+)", run).group(1)
    assert profile in profiles
    # Cargo puts a custom profile's output in target/<profile name>/.
    copied = re.findall(r"target/(\w+)/snippet-guard", run)
    assert copied == [profile]


def test_runs_the_crate_binary_as_nonroot_65532():
    crate = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["name"]
    assert instructions("ENTRYPOINT") == [f'["/{crate}"]']
    assert instructions("USER") == ["65532:65532"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 65532
    assert values["containerSecurityContext"]["runAsUser"] == 65532
    assert values["image"]["repository"] == "ghcr.io/snippet-guard/snippet-guard"


def test_dockerignore_keeps_the_sources_and_drops_the_rest():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {"target", ".git", ".venv"} <= ignored
    assert not {"src", "Cargo.toml", "Cargo.lock", "*", "**"} & ignored
