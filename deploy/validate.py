#!/usr/bin/env python3
"""Validate everything under deploy/ with the real tools, built or fetched on first use.

    uv run python deploy/validate.py [--only compose,k8s,prometheus,grafana] [--k8s-version 1.33.0]

- deploy/compose/compose.yaml, per profile: `docker compose config` (Docker Compose v2.40.3, built
  from the Go module proxy).
- deploy/k8s overlays: rendered by kustomize v5.8.1, checked by kubeconform v0.8.0 -strict (both
  from the Go module proxy) against the Kubernetes JSON schemas bundled in the PyPI package
  kubernetes-validate 1.37.0 (pip download, sha256-pinned), plus this script's own checks.
- deploy/prometheus rules (check + unit tests), the compose scrape config and every query of the
  Grafana dashboards: promtool from the Prometheus module v0.313.5 (built from the Go module proxy).

KEDA's ScaledObject has no schema there (kubeconform's CRD catalog is not on a reachable
registry), so kubeconform skips exactly that kind and this script checks those objects itself
(target, consumer group, topic, replica bounds).

Tools are cached under SOCIALPUB_TOOLS_CACHE (default ~/.cache/socialpub-tools); a warm run only
runs them. Use KUBECONFORM, KUSTOMIZE, PROMTOOL or DOCKER_COMPOSE to point at binaries you
already have. Needs `go` (1.24+) on PATH for the first run. Exit status 1 if anything fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.events import Platform

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RUNBOOK = ROOT / "docs" / "runbook.md"
OVERLAYS = ("local", "production")
KEDA_KINDS = ("ScaledObject",)
DEFAULT_K8S_VERSION = "1.33.0"
# Long-running compose services need a health check; these run once and exit.
ONE_SHOT_SERVICES = {"topics", "credentials-key"}
# Graceful shutdown inside the pod: uvicorn drain 25 s + FastStream in-flight handlers 20 s.
MIN_GRACE_SECONDS = 25 + 20
# Where the emulator serves every platform (compose demo.env, the k8s emulator component).
EMULATOR_URL = "http://emulator:8090/"
# Platforms whose OAuth token endpoint is not under their API's base URL: setting only the base URL
# would send token refreshes elsewhere (tools/emulator/endpoints.py has the emulator's paths).
OWN_TOKEN_HOST = ("YOUTUBE", "LINKEDIN")


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str  # relative to the module root
    tags: str = ""
    ldflags: str = ""
    flavour: str = ""  # names a build with non-default tags in the cache, so changing them rebuilds

    @property
    def env_override(self) -> str:
        return self.name.upper().replace("-", "_")


TOOLS = {
    "kubeconform": GoTool("kubeconform", "github.com/yannh/kubeconform", "v0.8.0", "./cmd/kubeconform"),
    "kustomize": GoTool("kustomize", "sigs.k8s.io/kustomize/kustomize/v5", "v5.8.1", "."),
    # Only the DNS service discovery (the compose scrape config uses it): the other plugins (cloud
    # SDKs, client-go) would more than double the build time.
    "promtool": GoTool(
        "promtool",
        "github.com/prometheus/prometheus",
        "v0.313.5",
        "./cmd/promtool",
        tags="remove_all_sd,enable_dns_sd",
        flavour="-dns-sd",
    ),
    "docker-compose": GoTool(
        "docker-compose",
        "github.com/docker/compose/v2",
        "v2.40.3",
        "./cmd",
        ldflags="-X github.com/docker/compose/v2/internal.Version=v2.40.3",
    ),
}
K8S_SCHEMAS_PACKAGE = "kubernetes-validate"
K8S_SCHEMAS_VERSION = "1.37.0"
K8S_SCHEMAS_SHA256 = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"


class ValidationError(Exception):
    """A failed check; the message says what and where."""


class ToolError(Exception):
    """A tool could not be built or fetched."""


def cache_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_TOOLS_CACHE", "~/.cache/socialpub-tools")).expanduser().resolve()


def run(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure raise with its output."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise ValidationError(f"`{' '.join(args)}` exited {result.returncode}:\n{output}")
    return result.stdout + result.stderr


# --- tools ------------------------------------------------------------------------------------


def install_atomically(target: Path, build: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        staging = Path(scratch) / "out"
        staging.mkdir()
        build(staging)
        (staging / ".installed").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def go_tool(tool: GoTool) -> Path:
    override = os.environ.get(tool.env_override)
    if override:
        return Path(override)
    home = cache_dir() / f"{tool.name}-{tool.version}{tool.flavour}"
    binary = home / "bin" / tool.name
    if (home / ".installed").exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ToolError(
            f"building {tool.name} needs Go: install it (Debian: apt-get install golang) or set {tool.env_override}"
        )
    print(f"  building {tool.name} {tool.version} from the Go module proxy into {home} ...", flush=True)
    started = time.monotonic()
    go_env = {**os.environ, "GOFLAGS": "-buildvcs=false", "GOWORK": "off"}

    def build(out: Path) -> None:
        # Not `go install module@version`: modules with replace directives (prometheus) refuse it,
        # and the proxy here can refuse the version-list lookup it makes. A throwaway module fetches
        # the exact version; the build then runs inside the module with its own go.mod and go.sum.
        with tempfile.TemporaryDirectory() as scratch:
            Path(scratch, "go.mod").write_text("module local/socialpub-tools\n\ngo 1.24\n")
            download = run(
                [go, "mod", "download", "-json", f"{tool.module}@{tool.version}"], cwd=Path(scratch), env=go_env
            )
            module_dir = Path(json.loads(download)["Dir"])
            src = Path(scratch) / "src"
            shutil.copytree(module_dir, src)
            for path in [src, *src.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o200)
            args = [go, "build", "-trimpath", "-o", str(out / "bin" / tool.name)]
            if tool.tags:
                args += ["-tags", tool.tags]
            if tool.ldflags:
                args += ["-ldflags", tool.ldflags]
            run([*args, tool.package], cwd=src, env=go_env)

    install_atomically(home, build)
    print(f"  built {tool.name} in {time.monotonic() - started:.0f} s", flush=True)
    return binary


def pip_download(requirement: str, dest: Path) -> None:
    """Fetch one wheel from PyPI with pip (the system's, or pip run by uv)."""
    candidates = []
    python = shutil.which("python3")
    if python:
        candidates.append([python, "-m", "pip"])
    uv = shutil.which("uv")
    if uv:
        candidates.append([uv, "tool", "run", "--quiet", "pip"])
    errors = []
    for pip in candidates:
        try:
            run([*pip, "download", "--quiet", "--no-deps", "--only-binary", ":all:", "--dest", str(dest), requirement])
            return
        except ValidationError as exc:
            errors.append(str(exc))
    raise ToolError(f"cannot download {requirement} with pip:\n" + "\n".join(errors))


def k8s_schemas(k8s_version: str) -> Path:
    """The Kubernetes JSON schemas shipped in the kubernetes-validate wheel, made loadable by
    kubeconform from disk: absolute `$ref`s to `/api/_definitions.json` become relative, `$id`s go."""
    home = cache_dir() / f"k8s-schemas-{K8S_SCHEMAS_VERSION}"
    folder = home / f"v{k8s_version}-local-strict"
    if (home / ".installed").exists():
        if not folder.is_dir():
            raise ToolError(
                f"Kubernetes {k8s_version} is not among the schemas of {K8S_SCHEMAS_PACKAGE} {K8S_SCHEMAS_VERSION}"
            )
        return folder
    print(
        f"  fetching {K8S_SCHEMAS_PACKAGE}=={K8S_SCHEMAS_VERSION} from PyPI for its Kubernetes schemas ...", flush=True
    )

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            pip_download(f"{K8S_SCHEMAS_PACKAGE}=={K8S_SCHEMAS_VERSION}", Path(scratch))
            wheel = next(Path(scratch).glob("*.whl"))
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            if digest != K8S_SCHEMAS_SHA256:
                raise ToolError(f"{wheel.name}: sha256 {digest}, expected {K8S_SCHEMAS_SHA256}")
            prefix = "kubernetes_validate/kubernetes-json-schema/"
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    if not (name.startswith(prefix) and name.endswith(".json") and "-local-strict/" in name):
                        continue
                    target = out / name.removeprefix(prefix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    schema = json.loads(archive.read(name))
                    schema.pop("$id", None)
                    text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
                    target.write_text(text)

    install_atomically(home, build)
    if not folder.is_dir():
        raise ToolError(
            f"Kubernetes {k8s_version} is not among the schemas of {K8S_SCHEMAS_PACKAGE} {K8S_SCHEMAS_VERSION}"
        )
    return folder


# --- checks -----------------------------------------------------------------------------------


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def check_compose(report: Callable[[str], None]) -> None:
    compose = str(go_tool(TOOLS["docker-compose"]))
    version = run([compose, "version", "--short"]).strip()
    base = [compose, "--project-directory", str(COMPOSE_FILE.parent), "-f", str(COMPOSE_FILE)]
    variants = {
        "default (production-like)": [],
        "demo (demo.env)": ["--env-file", str(COMPOSE_FILE.parent / "demo.env")],
        "local profile": ["--profile", "local"],
    }
    platforms = {p.value for p in Platform}
    for label, extra in variants.items():
        rendered = json.loads(run([*base, *extra, "config", "--format", "json"]))
        services: dict[str, Any] = rendered["services"]
        problems = []
        publishers = {name.removeprefix("publisher-") for name in services if name.startswith("publisher-")}
        if publishers != platforms:
            problems.append(f"publishers {sorted(publishers)} != platforms {sorted(platforms)}")
        has_emulator = "emulator" in services
        if has_emulator != (label != "default (production-like)"):
            problems.append(f"emulator {'present' if has_emulator else 'absent'}")
        for name, service in services.items():
            if name not in ONE_SHOT_SERVICES and "healthcheck" not in service:
                problems.append(f"{name}: no healthcheck")
            for volume in service.get("volumes", []):
                if volume["type"] == "volume" and not volume.get("source"):
                    problems.append(f"{name}: anonymous volume at {volume['target']}")
        problems += platform_env_problems(services, emulated=label == "demo (demo.env)")
        if problems:
            raise ValidationError(f"compose {label}: " + "; ".join(problems))
        report(f"compose {label}: valid ({len(services)} services, docker compose {version} config)")


def platform_env_problems(services: dict[str, Any], *, emulated: bool) -> list[str]:
    """Every service that is told where a platform's API is also knows its token endpoint; with the
    emulator, all of them point at it. The metrics service knows where approval is."""
    problems = []
    for name, service in services.items():
        env: dict[str, str] = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        problems += [f"{name}: {p}" for p in platform_config_problems(env, emulated=emulated)]
    metrics_env = (services.get("metrics", {}).get("environment")) or {}
    if not str(metrics_env.get("METRICS_APPROVAL_URL", "")).startswith("http://approval:"):
        problems.append("metrics: METRICS_APPROVAL_URL does not point at the approval service")
    return problems


def platform_config_problems(env: dict[str, str], *, emulated: bool) -> list[str]:
    platforms = {k: v for k, v in env.items() if k.startswith("SOCIALPUB_PLATFORMS__")}
    if not platforms:
        return []
    problems = [
        f"SOCIALPUB_PLATFORMS__{p}__BASE_URL is set without SOCIALPUB_PLATFORMS__{p}__TOKEN_URL"
        for p in OWN_TOKEN_HOST
        if f"SOCIALPUB_PLATFORMS__{p}__BASE_URL" in platforms
        and f"SOCIALPUB_PLATFORMS__{p}__TOKEN_URL" not in platforms
    ]
    if emulated:
        problems += [
            f"{k}={v} is not the emulator" for k, v in sorted(platforms.items()) if not v.startswith(EMULATOR_URL)
        ]
    return problems


def check_k8s(report: Callable[[str], None], k8s_version: str, rendered_dir: Path) -> None:
    kustomize = str(go_tool(TOOLS["kustomize"]))
    kubeconform = str(go_tool(TOOLS["kubeconform"]))
    schemas = k8s_schemas(k8s_version)
    for overlay in OVERLAYS:
        text = run([kustomize, "build", str(DEPLOY / "k8s" / "overlays" / overlay)])
        rendered = rendered_dir / f"{overlay}.yaml"
        rendered.write_text(text)
        output = run(
            [
                kubeconform,
                "-strict",
                "-summary",
                "-kubernetes-version",
                k8s_version,
                "-schema-location",
                str(schemas / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
                "-skip",
                ",".join(KEDA_KINDS),
                str(rendered),
            ]
        )
        summary = output.strip().splitlines()[-1]
        documents = load_yaml_documents(text)
        notes = check_manifests(overlay, documents)
        report(f"k8s {overlay}: kustomize build + kubeconform (Kubernetes {k8s_version}): {summary}")
        for note in notes:
            report(f"  {note}")


def _by_kind(documents: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def check_manifests(overlay: str, documents: list[dict[str, Any]]) -> list[str]:
    """What kubeconform cannot know: probes, limits, grace periods, PDB coverage, KEDA wiring,
    no committed secret values."""
    deployments = _by_kind(documents, "Deployment")
    scaled = _by_kind(documents, "ScaledObject")
    checked, problems = _check_deployments(deployments, _by_kind(documents, "PodDisruptionBudget"))
    problems += _check_scaled_objects(overlay, documents, deployments, scaled)
    problems += _check_platform_config(overlay, documents, deployments)
    if overlay == "production":
        problems += [f"Secret {d['metadata']['name']} is committed" for d in documents if d["kind"] == "Secret"]
    if problems:
        raise ValidationError(f"k8s {overlay}: " + "; ".join(problems))
    return [
        f"{len(checked)} service Deployments: probes /readyz + /healthz, requests/limits, grace >= "
        f"{MIN_GRACE_SECONDS + 5} s, PDB each; {len(scaled)} KEDA ScaledObjects checked by this script"
    ]


def _check_deployments(
    deployments: dict[str, dict[str, Any]], pdbs: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    checked: list[str] = []
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/name") != "socialpub" or container["args"][0] == "tools.emulator":
            continue
        checked.append(name)
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append(f"{name}: readiness probe is not /readyz")
        if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append(f"{name}: liveness probe is not /healthz")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
            problems.append(f"{name}: cpu/memory requests and a memory limit are required")
        if pod.get("terminationGracePeriodSeconds", 30) < MIN_GRACE_SECONDS + 5:
            problems.append(f"{name}: terminationGracePeriodSeconds below the services' own drain time")
        if not any(set(p["spec"]["selector"]["matchLabels"].items()) <= set(labels.items()) for p in pdbs.values()):
            problems.append(f"{name}: no PodDisruptionBudget selects it")
    platforms = {p.value for p in Platform}
    publishers = {n.removeprefix("publisher-") for n in deployments if n.startswith("publisher-")}
    if publishers != platforms:
        problems.append(f"publisher Deployments {sorted(publishers)} != platforms {sorted(platforms)}")
    return checked, problems


def _check_scaled_objects(
    overlay: str,
    documents: list[dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    scaled: dict[str, dict[str, Any]],
) -> list[str]:
    """KEDA objects have no schema here: check the fields that matter by hand."""
    problems: list[str] = []
    config = next(
        d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("socialpub-config")
    )
    due_partitions = int(config["data"].get("TOPICS_DUE_PARTITIONS", config["data"]["SOCIALPUB_KAFKA__PARTITIONS"]))
    platforms = {p.value for p in Platform}
    if overlay == "production" and {n.removeprefix("publisher-") for n in scaled} != platforms:
        problems.append(f"ScaledObjects {sorted(scaled)} do not cover every platform")
    for name, obj in scaled.items():
        platform = name.removeprefix("publisher-")
        spec = obj["spec"]
        target = spec["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.append(f"ScaledObject {name}: target {target} is not a Deployment")
        elif "replicas" in deployments[target]["spec"]:
            problems.append(f"Deployment {target}: sets replicas although KEDA scales it")
        trigger = spec["triggers"][0]
        expected = {"consumerGroup": f"publisher.{platform}", "topic": f"posts.due.{platform}.v1"}
        if trigger["type"] != "kafka" or any(trigger["metadata"].get(k) != v for k, v in expected.items()):
            problems.append(f"ScaledObject {name}: trigger {trigger} is not kafka on {expected}")
        if not 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= due_partitions:
            problems.append(f"ScaledObject {name}: replicas must stay within 1..{due_partitions} (due partitions)")
    return problems


def _check_platform_config(
    overlay: str, documents: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> list[str]:
    """The platforms ConfigMap names every token endpoint that is not under a base URL (and the
    emulator everywhere in the local overlay); the metrics Deployment knows where approval is."""
    problems: list[str] = []
    for config in documents:
        if config["kind"] == "ConfigMap" and config["metadata"]["name"].startswith("socialpub-platforms"):
            found = platform_config_problems(config.get("data", {}), emulated=overlay == "local")
            problems += [f"ConfigMap {config['metadata']['name']}: {p}" for p in found]
    if "metrics" in deployments:
        container = deployments["metrics"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        if not env.get("METRICS_APPROVAL_URL", "").startswith("http://approval"):
            problems.append("Deployment metrics: METRICS_APPROVAL_URL does not point at the approval Service")
    return problems


def check_prometheus(report: Callable[[str], None]) -> None:
    promtool = str(go_tool(TOOLS["promtool"]))
    rules = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    out = run([promtool, "check", "rules", *map(str, rules)])
    found = ", ".join(re.findall(r"SUCCESS: (\d+ rules found)", out))
    report(f"prometheus rules: promtool check rules: {found}")
    out = run([promtool, "test", "rules", *map(str, tests)], cwd=PROMETHEUS_DIR / "tests")
    groups = sum(len(yaml.safe_load(t.read_text())["tests"]) for t in tests)
    report(f"prometheus rules: promtool test rules: {groups} test groups passed")
    run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    report("prometheus config (compose): promtool check config: valid")
    anchors = runbook_anchors()
    missing = []
    alerts = 0
    for path in rules:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts += 1
                url = rule.get("annotations", {}).get("runbook_url", "")
                if not url.startswith("docs/runbook.md#") or url.split("#", 1)[1] not in anchors:
                    missing.append(f"{rule['alert']} ({url or 'no runbook_url'})")
    if missing:
        raise ValidationError("alerts whose runbook_url has no section in docs/runbook.md: " + ", ".join(missing))
    report(f"prometheus alerts: all {alerts} link an existing docs/runbook.md section")


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))
    return anchors


GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${platform:regex}": ".*",
    "$platform": ".*",
    "$consumergroup": ".*",
}


def check_grafana(report: Callable[[str], None]) -> None:
    promtool = str(go_tool(TOOLS["promtool"]))
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = list(_panels(dashboard["panels"]))
        ids = [p["id"] for p in panels]
        if len(ids) != len(set(ids)):
            raise ValidationError(f"{path.name}: panel ids are not unique")
        exprs = []
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                if "$" in expr:
                    raise ValidationError(f"{path.name} panel {panel['title']!r}: unknown variable in {expr}")
                exprs.append(expr)
        # promtool parses PromQL only inside rule files, so every query becomes a recording rule.
        rules = {
            "groups": [
                {"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}
            ]
        }
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as handle:
            yaml.safe_dump(rules, handle)
            handle.flush()
            run([promtool, "check", "rules", handle.name])
        report(f"grafana {path.name}: valid JSON, {len(panels)} panels, {len(exprs)} PromQL queries parsed by promtool")


def _panels(panels: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="compose,k8s,prometheus,grafana", help="comma-separated subset")
    parser.add_argument("--k8s-version", default=os.environ.get("K8S_VERSION", DEFAULT_K8S_VERSION))
    args = parser.parse_args(argv)
    started = time.monotonic()
    failures: list[str] = []
    passed: list[str] = []

    def report(line: str) -> None:
        passed.append(line)
        print(f"ok   {line}", flush=True)

    with tempfile.TemporaryDirectory(prefix="socialpub-k8s-") as rendered:
        checks: dict[str, Callable[[], None]] = {
            "compose": lambda: check_compose(report),
            "k8s": lambda: check_k8s(report, args.k8s_version, Path(rendered)),
            "prometheus": lambda: check_prometheus(report),
            "grafana": lambda: check_grafana(report),
        }
        for name in args.only.split(","):
            print(f"== {name}", flush=True)
            try:
                checks[name.strip()]()
            except (ValidationError, ToolError) as exc:
                failures.append(name)
                print(f"FAIL {name}: {exc}", flush=True)
    elapsed = time.monotonic() - started
    if failures:
        print(f"deploy validation FAILED ({', '.join(failures)}) in {elapsed:.0f} s")
        return 1
    print(f"deploy validation passed: {len(passed)} checks in {elapsed:.0f} s (tools cached in {cache_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
