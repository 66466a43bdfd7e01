"""The OpenAPI document is served, is 3.1, covers exactly the app's routes, and
every schema reference resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_erp import Clock
from test_outbound import app_client

from gateway.openapi import OPERATIONS


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_spec_matches_routes_both_ways(aiohttp_client: Any, tmp_path: Path, partners_dir: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, Clock())
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    routes = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path in ("/", "/ui") or path.startswith("/ui/"):
            continue  # the console's HTML pages (and / sending a browser there) are not the API
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS"):
                routes.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert routes - documented == set(), "routes without documentation"
    assert documented - routes == set(), "documentation of routes that do not exist"
    assert documented == set(OPERATIONS)
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], f"{method} {path} has no responses"
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, f"{method} {path}"
    shipment = spec["paths"]["/api/v1/shipments"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    # Requests take the validation-mode schema (defaults may be left out); what the
    # gateway emits is the strict serialization schema.
    assert shipment["properties"]["document"] == {"$ref": "#/components/schemas/ShipmentInput"}
    assert "Shipment" in schemas and "CanonicalDocument" in schemas and "CanonicalDocumentInput" in schemas
    assert set(schemas["ShipmentInput"].get("required", [])) < set(schemas["Shipment"]["required"])


def test_published_copy_in_docs_is_current(regen_golden: bool) -> None:
    """docs/openapi.json is the spec the service serves, for readers without a server."""
    import json

    from gateway.openapi import spec

    published = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    text = json.dumps(spec(), indent=2, sort_keys=True) + "\n"
    if regen_golden or not published.exists():
        published.write_text(text, encoding="utf-8")
    assert published.read_text(encoding="utf-8") == text, (
        "run pytest --regen-golden to refresh docs/openapi.json"
    )
