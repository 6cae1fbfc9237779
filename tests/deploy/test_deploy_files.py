"""Deployment files agree with the code: topics, platforms, alerts and runbook, image, checks.

The tools themselves (docker compose, kustomize, kubeconform, promtool) run in
`make validate-deploy`; these tests need none of them.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
import pytest
import yaml

from metrics.settings import MetricsSettings, PlatformEndpoint
from publisher.platforms import build_client
from publisher.platforms.base import MediaFetcher, Polling
from publisher.platforms.linkedin import LinkedIn
from publisher.platforms.youtube import YouTube
from publisher.settings import PublisherSettings
from shared.events import Platform
from shared.topics import CATALOG, all_topics
from tools.emulator.endpoints import metrics_platforms

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PLATFORMS = sorted(p.value for p in Platform)
# The post-keyed topics the scheduler reads as one co-partitioned stream (docs/scheduler.md).
SCHEDULER_CO_PARTITIONED = {
    "posts.scheduled.v1",
    "posts.commands.v1",
    "posts.retry-scheduled.v1",
    "posts.held.v1",
    "posts.published.v1",
    "posts.failed.v1",
}


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def topics() -> ModuleType:
    return load_module("create_topics", DEPLOY / "k8s" / "base" / "topics" / "create_topics.py")


@pytest.fixture(scope="module")
def validate() -> ModuleType:
    return load_module("deploy_validate", DEPLOY / "validate.py")


# --- topics -----------------------------------------------------------------------------------


def test_topic_plan_covers_every_catalog_topic_and_its_dead_letter_topic(topics: ModuleType) -> None:
    planned = [t.name for t in topics.plan(topics.TopicsConfig())]
    assert sorted(planned) == sorted(all_topics())
    assert len(planned) == 2 * len(CATALOG)


def test_post_keyed_topics_share_one_partition_count(topics: ModuleType) -> None:
    config = topics.TopicsConfig.from_env(
        {"SOCIALPUB_KAFKA__PARTITIONS": "24", "TOPICS_DUE_PARTITIONS": "36", "TOPICS_DLQ_PARTITIONS": "2"}
    )
    plan = {t.name: t for t in topics.plan(config)}
    co_partitioned = {name for name, t in plan.items() if t.co_partitioned}
    assert co_partitioned >= SCHEDULER_CO_PARTITIONED
    assert {plan[name].partitions for name in co_partitioned} == {24}
    assert {plan[f"posts.due.{p}.v1"].partitions for p in PLATFORMS} == {36}
    assert {t.partitions for name, t in plan.items() if name.endswith(".dlq")} == {2}


def test_retention_and_replication_come_from_the_environment(topics: ModuleType) -> None:
    config = topics.TopicsConfig.from_env(
        {
            "SOCIALPUB_KAFKA__REPLICATION_FACTOR": "3",
            "TOPICS_RETENTION_MS": "1000",
            "TOPICS_DLQ_RETENTION_MS": "2000",
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": "test.",
        }
    )
    plan = {t.name: t for t in topics.plan(config)}
    assert plan["test.posts.published.v1"].configs == {
        "retention.ms": "1000",
        "min.insync.replicas": "2",
        "cleanup.policy": "delete",
    }
    assert plan["test.posts.published.v1.dlq"].configs["retention.ms"] == "2000"
    assert {t.replication_factor for t in plan.values()} == {3}


def test_existing_topics_with_another_count_fail_only_when_post_keyed(topics: ModuleType) -> None:
    plan = topics.plan(topics.TopicsConfig(partitions=12, due_partitions=12))
    errors, warnings = topics.check_existing(plan, {"posts.held.v1": 6, "posts.due.x.v1": 6, "posts.failed.v1": 12})
    assert len(errors) == 1
    assert "posts.held.v1" in errors[0]
    assert len(warnings) == 1
    assert "posts.due.x.v1" in warnings[0]


# --- one publisher per platform everywhere --------------------------------------------------------


def test_every_platform_has_a_kubernetes_publisher(validate: ModuleType) -> None:
    publishers = DEPLOY / "k8s" / "base" / "publishers"
    listed = yaml.safe_load((publishers / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == PLATFORMS
    for platform in PLATFORMS:
        text = (publishers / platform / "kustomization.yaml").read_text()
        assert f"nameSuffix: -{platform}" in text
        assert f'["publisher", "--platform", "{platform}"]' in text
        assert f"value: publisher.{platform}\n" in text
        assert f"value: posts.due.{platform}.v1\n" in text


def test_every_platform_has_a_compose_publisher_and_a_scrape_target() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert sorted(n.removeprefix("publisher-") for n in services if n.startswith("publisher-")) == PLATFORMS
    for platform in PLATFORMS:
        assert services[f"publisher-{platform}"]["command"] == ["publisher", "--platform", platform]
    assert services["emulator"]["profiles"] == ["demo", "local"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "socialpub-publisher")
    assert sorted(n.removeprefix("publisher-") for n in job["dns_sd_configs"][0]["names"]) == PLATFORMS


# --- image ------------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_locked_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 3
    runtime = text[text.rindex("\nFROM ") :]
    assert "uv sync" not in runtime
    assert "COPY --from=build" in runtime
    assert re.search(r"^USER \$\{APP_UID\}:\$\{APP_UID\}$", runtime, flags=re.MULTILINE)
    uid = re.search(r"ARG APP_UID=(\d+)", text)
    assert uid is not None
    assert int(uid[1]) >= 1000
    syncs = re.findall(r"^\s*uv sync ([^\n]+)", text, flags=re.MULTILINE)
    assert syncs
    assert all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert "COPY pyproject.toml uv.lock ./" in text
    assert ROOT.joinpath(".dockerignore").read_text().splitlines()[1] == "**"


def test_the_runtime_image_has_ffprobe_for_media_probing() -> None:
    runtime = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    install = re.search(r"^RUN apt-get update \\\n(?:.*\\\n)*.*$", runtime, flags=re.MULTILINE)
    assert install is not None, "no apt-get install in the runtime stage"
    step = install[0]
    assert re.search(r"apt-get install -y --no-install-recommends ffmpeg\b", step)
    assert "rm -rf /var/lib/apt/lists/*" in step


# --- where each service finds the platforms and the approval service --------------------------------

EMULATOR = "http://emulator:8090"
# Both services prefer their own prefix; clear every platform setting the test runner may carry.
_PLATFORM_ENV = ("SOCIALPUB_PLATFORMS", "METRICS_PLATFORMS", "PUBLISHER_PLATFORMS", "PUBLISHER_EMULATOR_URL")


def compose_env(service: str, env_file: str | None = None) -> dict[str, str]:
    """The environment compose gives `service`, with `${VAR:-default}` resolved as compose would."""
    variables: dict[str, str] = {}
    if env_file:
        for line in (DEPLOY / "compose" / env_file).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, value = line.partition("=")
                variables[name.strip()] = value.strip()
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    environment = compose["services"][service]["environment"]

    def resolve(value: object) -> str:
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: variables.get(m[1]) or m[2], str(value))

    return {name: resolve(value) for name, value in environment.items()}


def k8s_platform_env(*, emulator: bool) -> dict[str, str]:
    """The socialpub-platforms ConfigMap of the base, or as the emulator component replaces it."""
    path = DEPLOY / "k8s" / ("components/emulator" if emulator else "base") / "kustomization.yaml"
    generators = yaml.safe_load(path.read_text())["configMapGenerator"]
    literals = next(g["literals"] for g in generators if g["name"] == "socialpub-platforms")
    return dict(literal.split("=", 1) for literal in literals)


def with_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.startswith(_PLATFORM_ENV):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def metrics_endpoints(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, PlatformEndpoint]:
    with_env(monkeypatch, env)
    return MetricsSettings().platforms


def publisher_token_urls(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """Where the publisher's YouTube and LinkedIn modules would refresh tokens, as absolute URLs."""
    with_env(monkeypatch, env)
    settings = PublisherSettings()
    urls = {}
    for platform in (Platform.YOUTUBE, Platform.LINKEDIN):
        client = build_client(
            platform,
            httpx.AsyncClient(),
            settings.platforms.of(platform),
            base_url=None,
            fetch_media=cast(MediaFetcher, None),
            polling=Polling(),
        )
        assert isinstance(client, YouTube | LinkedIn)
        urls[platform.value] = client.http.url(client.token_url)
    return urls


REAL_TOKEN_URLS = {
    "youtube": "https://oauth2.googleapis.com/token",
    "linkedin": "https://www.linkedin.com/oauth/v2/accessToken",
}


def emulated_configurations() -> dict[str, dict[str, str]]:
    return {
        "compose demo.env (metrics)": compose_env("metrics", "demo.env"),
        "compose demo.env (publisher)": compose_env("publisher-youtube", "demo.env"),
        "k8s emulator component": k8s_platform_env(emulator=True),
    }


def real_configurations() -> dict[str, dict[str, str]]:
    return {
        "compose (metrics)": compose_env("metrics"),
        "compose (publisher)": compose_env("publisher-linkedin"),
        "k8s base": k8s_platform_env(emulator=False),
    }


@pytest.mark.parametrize("name", list(emulated_configurations()))
def test_emulated_setups_send_every_metrics_call_and_token_refresh_to_the_emulator(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = json.loads(metrics_platforms(EMULATOR))
    endpoints = metrics_endpoints(monkeypatch, emulated_configurations()[name])
    for platform, want in expected.items():
        assert endpoints[platform].base_url == want["base_url"], platform
        assert endpoints[platform].token_url == want.get("token_url"), platform
    assert publisher_token_urls(monkeypatch, emulated_configurations()[name]) == {
        p: expected[p]["token_url"] for p in ("youtube", "linkedin")
    }


@pytest.mark.parametrize("name", list(real_configurations()))
def test_real_setups_refresh_tokens_at_the_platforms_token_endpoints(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = real_configurations()[name]
    endpoints = metrics_endpoints(monkeypatch, env)
    assert {p: endpoints[p].token_url for p in REAL_TOKEN_URLS} == REAL_TOKEN_URLS
    # A base URL set without its token URL would make the publisher refresh under the API's host.
    assert publisher_token_urls(monkeypatch, env) == REAL_TOKEN_URLS


def test_metrics_verifies_api_keys_at_the_approval_service() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    container_port = compose["services"]["approval"]["ports"][0].rsplit(":", 1)[1]
    assert compose_env("metrics")["METRICS_APPROVAL_URL"] == f"http://approval:{container_port}"

    approval = load_k8s_documents(DEPLOY / "k8s" / "base" / "approval.yaml")
    service = next(d for d in approval if d["kind"] == "Service")
    metrics = next(d for d in load_k8s_documents(DEPLOY / "k8s" / "base" / "metrics.yaml") if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in metrics["spec"]["template"]["spec"]["containers"][0]["env"]}
    port = service["spec"]["ports"][0]["port"]
    assert env["METRICS_APPROVAL_URL"] == f"http://{service['metadata']['name']}:{port}"


def load_k8s_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# --- alerts, runbook, dashboard --------------------------------------------------------------------


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "socialpub.rules.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_a_severity_and_a_runbook_section(validate: ModuleType) -> None:
    anchors = validate.runbook_anchors()
    for alert in alerts():
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        url = alert["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#"), alert["alert"]
        assert url.split("#")[1] in anchors, alert["alert"]


def test_the_issue_asks_for_these_alerts() -> None:
    exprs = {a["alert"]: a["expr"] for a in alerts()}
    assert "consumergroup_lag" in exprs["SocialpubConsumerLagHigh"]
    assert "publisher_failure_ratio" in exprs["SocialpubPublishFailureRateHigh"]
    assert "scheduler_late_ratio" in exprs["SocialpubSchedulingLatenessFastBurn"]
    assert "socialpub_dead_letters_total" in exprs["SocialpubDeadLettersGrowing"]
    assert "socialpub_accounts_tokens_expiring" in exprs["SocialpubAccountTokensExpiring"]
    assert 'error_code="publish_unconfirmed"' in exprs["SocialpubPublishUnconfirmed"]


def test_runbook_has_every_procedure(validate: ModuleType) -> None:
    anchors = validate.runbook_anchors()
    for section in (
        "scaling-one-platforms-publishers",
        "replaying-a-dead-letter-topic",
        "reconnecting-accounts-and-releasing-held-posts",
        "deciding-unconfirmed-posts",
        "rotating-the-token-encryption-key",
        "upgrading-event-schemas",
    ):
        assert section in anchors
    links = re.findall(r"\]\(#([^)]+)\)", (ROOT / "docs" / "runbook.md").read_text())
    assert links
    assert set(links) <= anchors


def test_dashboard_panels_use_the_datasource_variable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "socialpub-operations.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]


# --- the validator's own manifest checks ----------------------------------------------------------


def rendered_production(validate: ModuleType) -> list[dict[str, Any]]:
    """A minimal rendering: one service Deployment with its PDB, and the publishers with KEDA."""
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"name": "p"}}
    pdb["spec"] = {"selector": {"matchLabels": {"app.kubernetes.io/name": "socialpub"}}}
    container = {
        "args": ["approval"],
        "readinessProbe": {"httpGet": {"path": "/readyz"}},
        "livenessProbe": {"httpGet": {"path": "/healthz"}},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
    }

    def deployment(name: str, args: list[str]) -> dict[str, Any]:
        pod = {"terminationGracePeriodSeconds": 60, "containers": [{**copy.deepcopy(container), "args": args}]}
        template = {"metadata": {"labels": {"app.kubernetes.io/name": "socialpub"}}, "spec": pod}
        return {"kind": "Deployment", "metadata": {"name": name}, "spec": {"template": template}}

    def scaled(platform: str) -> dict[str, Any]:
        meta = {"consumerGroup": f"publisher.{platform}", "topic": f"posts.due.{platform}.v1"}
        spec = {
            "scaleTargetRef": {"name": f"publisher-{platform}"},
            "minReplicaCount": 1,
            "maxReplicaCount": 12,
            "triggers": [{"type": "kafka", "metadata": meta}],
        }
        return {"kind": "ScaledObject", "metadata": {"name": f"publisher-{platform}"}, "spec": spec}

    config = {"kind": "ConfigMap", "metadata": {"name": "socialpub-config-abc"}}
    config["data"] = {"SOCIALPUB_KAFKA__PARTITIONS": "12"}
    docs: list[dict[str, Any]] = [config, pdb, deployment("approval", ["approval"])]
    for platform in PLATFORMS:
        docs += [deployment(f"publisher-{platform}", ["publisher", "--platform", platform]), scaled(platform)]
    return docs


def test_manifest_checks_pass_on_a_good_rendering(validate: ModuleType) -> None:
    notes = validate.check_manifests("production", rendered_production(validate))
    assert "10 service Deployments" in notes[0]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: d[2]["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"), "readiness"),
        (lambda d: d[2]["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30), "terminationGrace"),
        (lambda d: d[1]["spec"]["selector"]["matchLabels"].update(other="x"), "PodDisruptionBudget"),
        (lambda d: d[4]["spec"]["triggers"][0]["metadata"].update(topic="posts.due.other.v1"), "trigger"),
        (lambda d: d[4]["spec"].update(maxReplicaCount=48), "due partitions"),
        (lambda d: d[3]["spec"].update(replicas=2), "sets replicas"),
        (lambda d: d.append({"kind": "Secret", "metadata": {"name": "leak"}}), "committed"),
    ],
)
def test_manifest_checks_catch_mistakes(validate: ModuleType, breakage: Any, message: str) -> None:
    docs = rendered_production(validate)
    breakage(docs)
    with pytest.raises(validate.ValidationError, match=message):
        validate.check_manifests("production", docs)


def test_platform_config_checks_catch_token_endpoints_left_behind(validate: ModuleType) -> None:
    env = {"SOCIALPUB_PLATFORMS__YOUTUBE__BASE_URL": "http://emulator:8090/youtube"}
    assert validate.platform_config_problems(env, emulated=True) == [
        "SOCIALPUB_PLATFORMS__YOUTUBE__BASE_URL is set without SOCIALPUB_PLATFORMS__YOUTUBE__TOKEN_URL"
    ]
    env["SOCIALPUB_PLATFORMS__YOUTUBE__TOKEN_URL"] = "https://oauth2.googleapis.com/token"
    assert validate.platform_config_problems(env, emulated=False) == []
    assert validate.platform_config_problems(env, emulated=True) == [
        "SOCIALPUB_PLATFORMS__YOUTUBE__TOKEN_URL=https://oauth2.googleapis.com/token is not the emulator"
    ]
    docs = rendered_production(validate)
    docs.append({"kind": "ConfigMap", "metadata": {"name": "socialpub-platforms-abc"}, "data": env})
    validate.check_manifests("production", docs)
    with pytest.raises(validate.ValidationError, match="is not the emulator"):
        validate.check_manifests("local", docs)
