"""Schema-driven fuzz: schemathesis generates requests for every operation of the OpenAPI schema
and sends them to the service running as a real process; no request may cause a server error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.approval.conftest import BOOTSTRAP
from tests.support import ServiceProcess

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 12


def test_no_generated_request_causes_a_server_error(service: ServiceProcess) -> None:
    boot = httpx.post(
        f"{service.url}/v1/workspaces", json={"name": "fuzz"}, headers={"X-Bootstrap-Token": BOOTSTRAP}, timeout=10
    )
    key = boot.json()["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    httpx.patch(f"{service.url}/v1/workspace", json={"publishing_enabled": True}, headers=headers, timeout=10)
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 25
    failures: list[str] = []
    for operation in operations:
        if operation.path in ("/metrics", "/readyz", "/healthz"):
            continue
        strategy = operation.as_strategy(headers=headers)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=strategy, seed=st.integers())
        def check(case: schemathesis.Case[Any], seed: int) -> None:
            response = case.call(base_url=service.url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")

        check()
    log = service.log_path.read_text()
    errors = [line for line in log.splitlines() if "unexpected error" in line]
    assert failures == [], "\n".join(failures[:10]) + "\n" + "\n".join(errors[:3])
