"""The production path of a rendered project, checked without running containers.

Dockerfile (hadolint), compose.yaml (the Compose Specification's schema), the Keycloak
realm, the Kubernetes manifests (kustomize-built, then validated against the schemas of
a pinned Kubernetes version), the Makefile and the pre-commit hooks.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import CI, REPO, run, uv

RBAC = {"auth": "rbac", "with_example_module": True}
KEYCLOAK = {"auth": "keycloak", "with_example_module": False}
# The oldest Kubernetes the manifests promise to work on (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.33.0"
VENV_BIN = REPO / ".venv" / "bin"


def tool(name: str) -> Path:
    return VENV_BIN / name


def kustomize(directory: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        if CI:
            pytest.fail("CI=true requires kubectl (kustomize)")
        pytest.skip("kubectl not installed: cannot build the kustomizations")
    built = run(["kubectl", "kustomize", directory], directory).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One document per kind; of the Deployments, the API's (the job worker and scheduler have their own test)."""
    return {doc["kind"]: doc for doc in documents if doc["kind"] != "Deployment" or component(doc) == "api"}


def component(doc: dict[str, Any]) -> str | None:
    labels: dict[str, str] = doc["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component")


def validate_kubernetes(documents: list[dict[str, Any]], where: Path) -> None:
    path = where / "built.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, path], where)


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(project: Callable[..., Path]) -> None:
    root = project(**RBAC)
    run([tool("hadolint"), "Dockerfile"], root)


def test_dockerfile_builds_from_the_lock_and_runs_unprivileged(project: Callable[..., Path]) -> None:
    dockerfile = (project(**RBAC) / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+-slim$", dockerfile, re.MULTILINE), "the usual default base"
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "--mount=type=secret,id=ca,required=false" in dockerfile, "an optional CA for TLS-intercepting proxies"
    assert "COPY --from=ghcr.io" not in dockerfile, "uv comes from PyPI, not another registry"
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert "/health/live" in dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n")[0]
    assert "curl" not in dockerfile
    assert "--proxy-headers" in dockerfile and "FORWARDED_ALLOW_IPS=" in dockerfile
    # An allowlist: a new file (.env, data/, a key) stays out of the image until named here.
    lines = [line for line in (project(**RBAC) / ".dockerignore").read_text().splitlines() if line[:1] not in "#"]
    assert lines[0] == "*"
    assert {line for line in lines if line.startswith("!")} == {
        "!pyproject.toml",
        "!uv.lock",
        "!src/",
        "!modules/",
        "!config/",
        "!scripts/",
    }


# --- compose.yaml -----------------------------------------------------------------------------


@pytest.mark.parametrize("answers", [RBAC, KEYCLOAK], ids=["rbac", "keycloak"])
def test_compose_file_follows_the_compose_specification(project: Callable[..., Path], answers: dict[str, Any]) -> None:
    root = project(**answers)
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"], root)
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    assert services["migrate"]["command"] == ["python", "scripts/run_migrations.py", "--all"]
    assert (root / "scripts" / "run_migrations.py").is_file()
    app_depends = services["app"]["depends_on"]
    assert app_depends["migrate"] == {"condition": "service_completed_successfully"}
    assert app_depends["postgres"] == app_depends["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, service in services.items():
        if name not in {"migrate", "scheduler"}:  # a one-shot job; a process with no port to ask
            assert service["healthcheck"]["test"], f"{name} has no healthcheck"
    worker = services["worker"]
    assert worker["command"][:5] == ["python", "-m", "taskiq", "worker", "src.worker:broker"]
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "8001/health/ready" in " ".join(worker["healthcheck"]["test"])
    assert services["scheduler"]["command"][:4] == ["python", "-m", "taskiq", "scheduler"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in services["migrate"]["environment"], "migrations run outside the workers"
    assert ("keycloak" in services) is (answers["auth"] == "keycloak")


def test_keycloak_realm_matches_the_api(project: Callable[..., Path]) -> None:
    root = project(**KEYCLOAK)
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    realm = json.loads((root / "deploy" / "keycloak" / "realm.json").read_text())
    assert realm["realm"] == answers["keycloak_realm"]
    assert {role["name"] for role in realm["roles"]["realm"]} == {"admin", "user"}
    (client,) = realm["clients"]
    assert client["clientId"] == answers["keycloak_client_id"]
    assert client["directAccessGrantsEnabled"] is True
    (audience,) = [m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
    assert audience["config"]["included.client.audience"] == answers["keycloak_client_id"]
    assert audience["config"]["access.token.claim"] == "true"
    users = {user["username"]: user for user in realm["users"]}
    assert "admin" in users["alice"]["realmRoles"] and users["bob"]["realmRoles"] == ["user"]
    assert all(user["credentials"][0]["temporary"] is False for user in users.values())
    keycloak = yaml.safe_load((root / "compose.yaml").read_text())["services"]["keycloak"]
    assert "--import-realm" in keycloak["command"]
    assert "./deploy/keycloak:/opt/keycloak/data/import:ro" in keycloak["volumes"]
    assert not (project(**RBAC) / "deploy" / "keycloak").exists()


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.fixture
def overlay_with_servicemonitor(project: Callable[..., Path], tmp_path: Path) -> Iterator[Path]:
    """A copy of deploy/k8s whose production overlay also takes the optional ServiceMonitor component."""
    k8s = tmp_path / "k8s"
    shutil.copytree(project(**RBAC) / "deploy" / "k8s", k8s)
    overlay = k8s / "overlays" / "production" / "kustomization.yaml"
    commented = "# components:\n#   - ../../components/servicemonitor"
    text = overlay.read_text().replace(commented, "components:\n  - ../../components/servicemonitor")
    assert text != overlay.read_text(), "the overlay's commented components: entry changed"
    overlay.write_text(text)
    yield k8s / "overlays" / "production"


@pytest.mark.parametrize("answers", [RBAC, KEYCLOAK], ids=["rbac", "keycloak"])
def test_kubernetes_manifests_build_and_validate(
    project: Callable[..., Path], answers: dict[str, Any], tmp_path: Path
) -> None:
    k8s = project(**answers) / "deploy" / "k8s"
    built = kustomize(k8s / "overlays" / "production")
    assert sorted(doc["kind"] for doc in built) == sorted(
        ["ConfigMap", "Deployment", "Service", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
        + ["Deployment"] * 2  # the job worker and the scheduler
    )
    assert {doc["metadata"]["namespace"] for doc in built} == {"my-api"}
    validate_kubernetes(built, tmp_path)
    # The Secret is only an example (never applied, never real), but a valid one.
    secret = yaml.safe_load((k8s / "base" / "secret.example.yaml").read_text())
    validate_kubernetes([secret], tmp_path)


def test_kubernetes_validation_catches_a_broken_manifest(project: Callable[..., Path], tmp_path: Path) -> None:
    built = kustomize(project(**RBAC) / "deploy" / "k8s" / "overlays" / "production")
    deployment = by_kind(built)["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/typo"
    with pytest.raises(AssertionError, match="paht"):
        validate_kubernetes([deployment], tmp_path)


def test_kubernetes_manifests_fit_the_image_and_each_other(project: Callable[..., Path]) -> None:
    root = project(**RBAC)
    docs = by_kind(kustomize(root / "deploy" / "k8s" / "overlays" / "production"))
    deployment, service, job, config = docs["Deployment"], docs["Service"], docs["Job"], docs["ConfigMap"]
    pod = deployment["spec"]["template"]
    (api,) = pod["spec"]["containers"]
    assert api["image"] == "registry.example.com/my_api:0.1.0", "the overlay sets the release's image"
    assert deployment["spec"]["replicas"] == 3
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["ports"][0]["containerPort"] == 8000 and "UVICORN_PORT=8000" in (root / "Dockerfile").read_text()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # Non-root, read-only: only the emptyDirs are writable, the multiprocess metrics folder among them.
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in api["volumeMounts"]}
    multiproc = {e["name"]: e["value"] for e in api["env"]}["PROMETHEUS_MULTIPROC_DIR"]
    assert "emptyDir" in mounts[multiproc] and "emptyDir" in mounts["/tmp"]
    # Both read the same settings; the Job migrates with the image's own script.
    assert config["data"]["CONFIG_ENV"] == "production"
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["python", "scripts/run_migrations.py", "--all"]
    assert migrate["image"] == api["image"] and migrate["envFrom"] == api["envFrom"]
    assert "env" not in migrate, "PROMETHEUS_MULTIPROC_DIR would point the migration at a folder it lacks"
    secret = yaml.safe_load((root / "deploy" / "k8s" / "base" / "secret.example.yaml").read_text())
    refs = {next(iter(ref.values()))["name"] for ref in api["envFrom"]}
    assert refs == {config["metadata"]["name"], secret["metadata"]["name"]}


def test_job_worker_and_single_scheduler_run_the_image_with_the_apis_settings(project: Callable[..., Path]) -> None:
    built = kustomize(project(**RBAC) / "deploy" / "k8s" / "overlays" / "production")
    deployments = {component(doc): doc for doc in built if doc["kind"] == "Deployment"}
    api = deployments["api"]["spec"]["template"]["spec"]["containers"][0]
    (worker,) = deployments["worker"]["spec"]["template"]["spec"]["containers"]
    (scheduler,) = deployments["scheduler"]["spec"]["template"]["spec"]["containers"]
    assert worker["command"][:5] == ["python", "-m", "taskiq", "worker", "src.worker:broker"]
    assert scheduler["command"][:5] == ["python", "-m", "taskiq", "scheduler", "src.worker:scheduler"]
    # One scheduler, never two at once: each period is queued once.
    assert deployments["scheduler"]["spec"]["replicas"] == 1
    assert deployments["scheduler"]["spec"]["strategy"]["type"] == "Recreate"
    # The worker's probes and metrics are on jobs.worker_port (8001 by default), running jobs finish on SIGTERM.
    assert worker["ports"][0]["containerPort"] == 8001
    assert worker["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health/live"
    wait = int(worker["command"][worker["command"].index("--wait-tasks-timeout") + 1])
    assert deployments["worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > wait
    for container in (worker, scheduler):
        assert container["image"] == api["image"] and container["envFrom"] == api["envFrom"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_example_secret_is_refused_by_the_app(project: Callable[..., Path]) -> None:
    root = project(**RBAC)
    secret = yaml.safe_load((root / "deploy" / "k8s" / "base" / "secret.example.yaml").read_text())
    env = {"CONFIG_ENV": "production", **secret["stringData"]}
    code = "from src.core.config import load_settings; load_settings()"
    result = uv(root, "python", "-c", code, env=env, check=False)
    assert result.returncode != 0 and "placeholder" in result.stderr, result.stderr[-2000:]


def test_servicemonitor_component_scrapes_every_pod(overlay_with_servicemonitor: Path, tmp_path: Path) -> None:
    built = kustomize(overlay_with_servicemonitor)
    docs = by_kind(built)
    monitor, service = docs["ServiceMonitor"], docs["Service"]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    # The job workers (no Service) are scraped pod by pod on their metrics port, jobs.worker_port.
    pods = {component(doc): doc["spec"]["template"]["metadata"] for doc in built if doc["kind"] == "Deployment"}
    worker, wanted = docs["PodMonitor"], docs["PodMonitor"]["spec"]["selector"]["matchLabels"].items()
    assert worker["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert [name for name, pod in pods.items() if wanted <= pod["labels"].items()] == ["worker"]
    (endpoint,) = worker["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    (container,) = next(d for d in built if component(d) == "worker")["spec"]["template"]["spec"]["containers"]
    assert {port["name"]: port["containerPort"] for port in container["ports"]}[endpoint["port"]] == 8001
    # No schema for the operator's CRDs ships with kubernetes-validate; the rest still validates.
    validate_kubernetes([doc for doc in built if doc["kind"] not in {"ServiceMonitor", "PodMonitor"}], tmp_path)


# --- developer tooling ------------------------------------------------------------------------


def test_makefile_targets_run_the_project_scripts(project: Callable[..., Path]) -> None:
    root = project(**RBAC)
    listed = run(["make", "help"], root).stdout
    for target in ("run", "test", "lint", "fmt", "migrate", "new-module", "image", "up"):
        assert re.search(rf"^  {target} +\S", listed, re.MULTILINE), f"make help lacks {target}"
        command = run(["make", "-n", target, "name=orders"], root).stdout
        for script in re.findall(r"scripts/\S+\.py", command):
            assert (root / script).is_file(), f"make {target} runs {script}, which does not exist"
    assert "uv export --format requirements-txt" in run(["make", "-n", "requirements"], root).stdout
    refused = run(["make", "new-module"], root, check=False)
    assert refused.returncode != 0 and "make new-module name=orders" in refused.stderr


def test_pre_commit_hooks_pass_on_a_fresh_render(fresh_project: Callable[..., Path]) -> None:
    root = fresh_project(**RBAC)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    result = run([tool("pre-commit"), "run", "--all-files"], root, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    for hook in ("ruff check", "ruff format", "mypy", "module boundaries", "uv.lock matches"):
        assert re.search(rf"^{re.escape(hook)}.*Passed$", result.stdout, re.MULTILINE), result.stdout
    # The hooks do check: a badly formatted file is caught.
    (root / "src" / "badly_formatted.py").write_text("x   =  1\n")
    run(["git", "add", "-A"], root)
    caught = run([tool("pre-commit"), "run", "ruff-format", "--all-files"], root, check=False)
    assert caught.returncode != 0 and "Failed" in caught.stdout


def test_tooling_needs_no_network_fetch(project: Callable[..., Path]) -> None:
    config = yaml.safe_load((project(**RBAC) / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "hooks from GitHub would be fetched"
