"""``python -m translators.canonical``: print the canonical JSON Schema (the text of
docs/schema/canonical.schema.json). Writes to stdout only."""

from __future__ import annotations

import json

from translators.canonical import json_schema


def schema_text() -> str:
    """The schema as published: indented, sorted keys, trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
