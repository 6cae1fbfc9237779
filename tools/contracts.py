"""Regenerate docs/schemas and docs/asyncapi.*.json from the event models: `make docs`."""

from __future__ import annotations

from pathlib import Path

from shared.contracts import write_docs

DOCS = Path(__file__).resolve().parent.parent / "docs"

if __name__ == "__main__":
    for path in write_docs(DOCS):
        print(path.relative_to(DOCS.parent))
