"""values.yaml is documented key by key (`# --`, helm-docs style), the README values table
(between <!-- values:start --> and <!-- values:end -->) is what scripts/values-table.py
generates, and the schema knows every key."""

from __future__ import annotations

import json

import yaml

from conftest import CHART, ROOT, load_script

values_table = load_script("values-table")


def test_every_key_has_a_description():
    rows, missing = values_table.collect((CHART / "values.yaml").read_text())
    assert missing == []
    assert len(rows) > 50
    assert all(row.description for row in rows)


def test_the_description_check_can_fail():
    text = "# -- documented\na: 1\n# a plain comment\nb: 2\nc:\n  # -- child\n  d: true\n\n# -- detached\n\ne: 3\n"
    rows, missing = values_table.collect(text)
    assert missing == ["b", "c", "e"]
    assert [r.key for r in rows] == ["a", "b", "c.d", "e"]


def test_multi_line_descriptions_and_data_maps():
    text = "# -- first line\n# second line\nlabels:\n  team: x\n"
    (row,), missing = values_table.collect(text)
    assert missing == []
    assert (row.key, row.type, row.default, row.description) == ("labels", "object", {"team": "x"}, "first line second line")


def test_readme_values_table_is_current():
    table, missing = values_table.generated()
    assert missing == []
    readme = (ROOT / "README.md").read_text()
    assert values_table.readme_region(readme) == table, "run scripts/values-table.py --write"


def test_schema_covers_every_values_key():
    schema = json.loads((CHART / "values.schema.json").read_text())
    definitions = schema["definitions"]

    def resolve(node):
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(values, node, path):
        node = resolve(node)
        assert node.get("type") in ("object", None) or "object" in node.get("type", []), path
        props = node.get("properties")
        for key, value in values.items():
            if props is None:
                continue  # free-form map (labels, affinity, ...)
            assert key in props, f"{'.'.join(path + [key])} is not in values.schema.json"
            if isinstance(value, dict) and value:
                walk(value, props[key], path + [key])

    walk(yaml.safe_load((CHART / "values.yaml").read_text()), schema, [])
