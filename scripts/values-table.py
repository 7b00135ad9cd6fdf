#!/usr/bin/env python3
"""Generate the README values table from charts/snippet-guard/values.yaml.

    .venv/bin/python scripts/values-table.py            # print the table
    .venv/bin/python scripts/values-table.py --write    # replace it in README.md, between
                                                        # <!-- values:start --> and <!-- values:end -->
    .venv/bin/python scripts/values-table.py --check    # exit 1 if README.md's table is stale
                                                        # or a key lacks a `# --` description

Descriptions are helm-docs style: a comment block directly above a key (no blank line
between), whose first line starts with `# -- `; the following comment lines of the block
continue it. Every key needs one, sections included. A key whose value is a non-empty
mapping with at least one described child is a section: its children get rows. Any other
key is a row of its own (lists, and data maps such as matchLabels, appear whole as the default).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "charts" / "snippet-guard" / "values.yaml"
README = ROOT / "README.md"
START, END = "<!-- values:start -->", "<!-- values:end -->"


@dataclass
class Row:
    key: str
    type: str
    default: object
    description: str


def _description(lines: list[str], key_line: int) -> str | None:
    """The `# --` description in the comment block right above line `key_line` (0-based)."""
    block = []
    i = key_line - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.insert(0, lines[i].strip())
        i -= 1
    for n, line in enumerate(block):
        if line.startswith("# --"):
            parts = [line[len("# --") :].strip()]
            parts += [rest.lstrip("#").strip() for rest in block[n + 1 :]]
            text = " ".join(p for p in parts if p)
            return text or None
    return None


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def collect(text: str) -> tuple[list[Row], list[str]]:
    """Rows of the table, and the dotted keys that have no `# --` description."""
    lines = text.splitlines()
    root = yaml.compose(text)
    data = yaml.safe_load(text) or {}
    rows: list[Row] = []
    missing: list[str] = []
    if root is None:
        return rows, missing

    def walk(node: yaml.MappingNode, path: list[str], value: dict) -> None:
        for key_node, value_node in node.value:
            key = key_node.value
            dotted = ".".join(path + [key])
            desc = _description(lines, key_node.start_mark.line)
            if desc is None:
                missing.append(dotted)
            child = value[key]
            is_section = (
                isinstance(value_node, yaml.MappingNode)
                and value_node.value
                and any(_description(lines, k.start_mark.line) for k, _ in value_node.value)
            )
            if is_section:
                walk(value_node, path + [key], child)
            else:
                rows.append(Row(dotted, _type(child), child, desc or ""))

    if not isinstance(root, yaml.MappingNode):
        raise ValueError("values.yaml must be a mapping")
    walk(root, [], data)
    return rows, missing


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row]) -> str:
    out = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for row in rows:
        default = json.dumps(row.default, separators=(",", ":"))
        out.append(f"| `{row.key}` | {row.type} | `{_cell(default)}` | {_cell(row.description)} |")
    return "\n".join(out) + "\n"


def generated() -> tuple[str, list[str]]:
    rows, missing = collect(VALUES.read_text())
    return table(rows), missing


def readme_region(readme: str) -> str:
    start, end = readme.index(START) + len(START), readme.index(END)
    return readme[start:end].strip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the table in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args()

    text, missing = generated()
    if missing:
        print("keys without a `# --` description: " + ", ".join(missing), file=sys.stderr)
        if args.check or args.write:
            return 1
    if args.write:
        readme = README.read_text()
        start, end = readme.index(START) + len(START), readme.index(END)
        README.write_text(readme[:start] + "\n" + text + readme[end:])
        print("updated the values table in README.md")
    elif args.check:
        if readme_region(README.read_text()) != text:
            print("README.md values table is stale: run scripts/values-table.py --write", file=sys.stderr)
            return 1
        print("README.md values table is up to date")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
