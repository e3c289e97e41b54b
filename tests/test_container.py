"""The production image of a rendered project, built and run with podman.

Built once per session (the slow part: `uv run pytest -m container` runs these alone),
on a base image made from Debian's packages when no registry can be reached. Each test
runs the image against the local PostgreSQL and Redis (`--network host`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import containers
from tests.helpers import CI, REPO, run

pytestmark = pytest.mark.container

RBAC = {"auth": "rbac", "with_example_module": True}
SECRET = "container-test-key-0123456789abcdef0123"
LIVE = re.compile(r'^http_requests_total\{[^}]*route="/health/live"[^}]*\} ([0-9.]+)$', re.MULTILINE)


@dataclass(frozen=True)
class Image:
    tag: str
    size_mb: float
    build_seconds: float
    base_seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_until_live(base: str, running: Callable[[], str | None], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        problem = running()
        assert problem is None, problem
        try:
            if _get(f"{base}/health/live")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no answer from {base} within {timeout} s"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def image(project: Callable[..., Path]) -> Image:
    reason = containers.missing()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true requires podman: {reason}")
        pytest.skip(reason)
    root = project(**RBAC)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    tag = f"localhost/fastapi-enterprise-test:{worker}"
    command: list[str | Path] = ["build", "--format", "docker", "-t", tag]  # docker format keeps HEALTHCHECK
    # A TLS-intercepting proxy's CA (where there is one) reaches pip and uv as the optional build secret.
    ca = os.environ.get("SSL_CERT_FILE")
    if ca and Path(ca).is_file():
        command += ["--secret", f"id=ca,src={ca}"]
    containers.CACHE.mkdir(parents=True, exist_ok=True)
    with (containers.CACHE / "build.lock").open("w") as lock:  # xdist workers build one after the other
        fcntl.flock(lock, fcntl.LOCK_EX)
        base, base_seconds = containers.ensure_base_image()
        started = time.monotonic()
        containers.podman(*command, "--build-arg", f"BASE_IMAGE={base}", root, timeout=1800)
        build_seconds = time.monotonic() - started
    size = int(containers.podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    return Image(tag, size / 1e6, build_seconds, base_seconds)


@pytest.fixture
def server(image: Image, postgres: str, redis_url: str) -> Iterator[tuple[str, dict[str, str], str]]:
    """The image serving with two workers on a free port; yields (base URL, environment, container)."""
    port = _free_port()
    env = {
        "DATABASE_URL": postgres,
        "REDIS_URL": redis_url,
        "JWT_SECRET_KEY": SECRET,
    }
    name = f"fe-test-{uuid.uuid4().hex[:8]}"
    flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    served = {"UVICORN_PORT": str(port), "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": "/tmp/prometheus"}
    workers = [arg for key, value in served.items() for arg in ("-e", f"{key}={value}")]
    # As on Kubernetes: read-only root filesystem, /tmp writable.
    containers.podman(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp", *flags, *workers, image.tag
    )

    def running() -> str | None:
        state = containers.podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if state == "true":
            return None
        return "container stopped:\n" + containers.podman("logs", name, check=False).stderr[-3000:]

    try:
        _wait_until_live(f"http://127.0.0.1:{port}", running)
        yield f"http://127.0.0.1:{port}", env, name
    finally:
        containers.podman("rm", "-f", "-t", "5", name, check=False)


def test_image_serves_ready_after_migrations(
    image: Image, server: tuple[str, dict[str, str], str], record_property: Callable[[str, object], None]
) -> None:
    base, env, name = server
    record_property("figure", f"container image: {image.size_mb:.0f} MB")
    record_property("figure", f"container image build: {image.build_seconds:.0f} s")
    record_property("figure", f"container base image (debootstrap, 0 = cached): {image.base_seconds:.0f} s")

    status, body = _get(f"{base}/health/ready")
    assert status == 503 and json.loads(body)["failed"] == ["migrations"], body
    flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    migrate = ["run", "--rm", "--network", "host", "--read-only", *flags, image.tag]
    containers.podman(*migrate, "python", "scripts/run_migrations.py", "--all", timeout=300)
    status, body = _get(f"{base}/health/ready")
    assert status == 200 and json.loads(body)["status"] == "ok", body

    uid = containers.podman("exec", name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", uid, re.MULTILINE), "uvicorn must not run as root"
    assert containers.podman("healthcheck", "run", name, check=False).returncode == 0, "HEALTHCHECK failed"

    # Two workers, one scrape: whichever worker answers reports every request of both.
    sent = 1 + sum(1 for _ in range(20) if _get(f"{base}/health/live")[0] == 200)
    assert sum(float(value) for value in LIVE.findall(_get(f"{base}/metrics")[1])) >= sent


def test_image_holds_the_app_and_no_dev_tools(image: Image) -> None:
    probe = (
        "import importlib.util, json, os, pathlib, shutil; "
        "print(json.dumps({"
        "'modules': [m for m in ('pytest', 'ruff', 'mypy', 'pip', 'uv', 'fastapi', 'uvicorn')"
        " if importlib.util.find_spec(m)],"
        "'uv_binary': shutil.which('uv'),"
        "'tests': sorted(str(p) for d in ('src', 'modules', 'scripts')"
        " for p in pathlib.Path('/app', d).rglob('tests')),"
        "'top': sorted(os.listdir('/app')),"
        "'uid': os.getuid()}))"
    )
    found = json.loads(containers.podman("run", "--rm", image.tag, "python", "-c", probe).stdout)
    assert found["modules"] == ["fastapi", "uvicorn"], f"dev tools in the image: {found['modules']}"
    assert found["uv_binary"] is None
    assert found["tests"] == [], "tests are not shipped"
    assert set(found["top"]) == {".venv", "config", "modules", "pyproject.toml", "scripts", "src", "uv.lock"}
    assert found["uid"] == 10001
    inspected = json.loads(containers.podman("image", "inspect", image.tag).stdout)[0]
    assert inspected["Config"]["User"] == "10001:10001"
    assert "/health/live" in " ".join(inspected["Healthcheck"]["Test"]), "HEALTHCHECK (kept by --format docker)"


def test_compose_app_and_migrate_run_under_podman_compose(
    image: Image, project: Callable[..., Path], postgres: str, redis_url: str, tmp_path: Path
) -> None:
    """compose.yaml's app and migrate services, pointed at the local PostgreSQL and Redis by an override."""
    root = project(**RBAC)
    port = _free_port()
    local = {"DATABASE_URL": postgres, "REDIS_URL": redis_url}
    # Database images cannot be pulled here: drop the dependencies on them, keep app -> migrate.
    override = tmp_path / "compose.local.yaml"
    override.write_text(
        f"""\
services:
  migrate:
    image: {image.tag}
    network_mode: host
    environment: {json.dumps(local)}
    depends_on: !reset {{}}
  app:
    image: {image.tag}
    network_mode: host
    ports: !reset []
    environment: {json.dumps({**local, "UVICORN_PORT": str(port)})}
    depends_on: !reset {{}}
"""
    )
    # A second file puts the app's dependency on migrate back (podman-compose cannot `!override` a mapping).
    restore = tmp_path / "compose.migrate-first.yaml"
    restore.write_text(
        "services:\n  app:\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n"
    )
    name = f"fe-test-{uuid.uuid4().hex[:8]}"
    files = [arg for path in (root / "compose.yaml", override, restore) for arg in ("-f", path)]
    compose = [REPO / ".venv" / "bin" / "podman-compose", "-p", name, *files]
    env = containers.podman_env()
    try:
        run([*compose, "up", "-d", "--no-build", "app"], root, env=env, timeout=600)
        app, migrate = f"{name}_app_1", f"{name}_migrate_1"

        def running() -> str | None:
            state = containers.podman("inspect", "--format", "{{.State.Running}}", app, check=False).stdout
            return None if state.strip() == "true" else containers.podman("logs", app, check=False).stderr[-3000:]

        base = f"http://127.0.0.1:{port}"
        _wait_until_live(base, running)
        status, body = _get(f"{base}/health/ready")
        assert status == 200, f"the migrate service should have migrated before the app started: {body}"
        assert containers.podman("wait", migrate).stdout.strip() == "0", "the migrate service failed"
    finally:
        run([*compose, "down", "-t", "5"], root, env=env, check=False)


def test_deployment_runs_under_podman_kube_play(
    image: Image, project: Callable[..., Path], postgres: str, redis_url: str, tmp_path: Path
) -> None:
    """deploy/k8s's Deployment and ConfigMap as Podman plays them: non-root, read-only, emptyDirs, two workers.

    Adapted only where a one-host podman differs from a cluster: the local image, one replica,
    host networking (so no declared ports; probes on the test's port), and the Secret put in
    Podman's secret store (podman 4.3 reads a secretRef from there, as base64 values in JSON).
    """
    if shutil.which("kubectl") is None:
        if CI:
            pytest.fail("CI=true requires kubectl (kustomize)")
        pytest.skip("kubectl not installed: cannot build the kustomization")
    root = project(**RBAC)
    built = [d for d in yaml.safe_load_all(run(["kubectl", "kustomize", "deploy/k8s/base"], root).stdout) if d]
    suffix = uuid.uuid4().hex[:8]
    config = next(d for d in built if d["kind"] == "ConfigMap")
    deployment = next(d for d in built if d["kind"] == "Deployment")
    port = _free_port()
    secret_name = f"fe-test-secrets-{suffix}"
    deployment["metadata"]["name"] = f"fe-test-{suffix}"
    deployment["spec"]["replicas"] = 1
    (api,) = deployment["spec"]["template"]["spec"]["containers"]
    api |= {"image": image.tag, "imagePullPolicy": "Never"}
    del api["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        api[probe]["httpGet"]["port"] = port
    api["env"].append({"name": "UVICORN_PORT", "value": str(port)})
    api["envFrom"] = [ref if "configMapRef" in ref else {"secretRef": {"name": secret_name}} for ref in api["envFrom"]]
    values = {"DATABASE_URL": postgres, "REDIS_URL": redis_url, "JWT_SECRET_KEY": SECRET}
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in values.items()}))
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all([config, deployment]))
    containers.podman("secret", "create", secret_name, secret_file)
    container = f"fe-test-{suffix}-pod-0-api"
    try:
        containers.podman("kube", "play", "--network", "host", play, timeout=300)

        def running() -> str | None:
            state = containers.podman("inspect", "--format", "{{.State.Running}}", container, check=False).stdout
            return None if state.strip() == "true" else containers.podman("logs", container, check=False).stderr

        base = f"http://127.0.0.1:{port}"
        _wait_until_live(base, running)
        assert _get(f"{base}/health/ready")[0] == 503, "not ready before the migration"
        flags = [arg for key, value in values.items() for arg in ("-e", f"{key}={value}")]
        migrate = ["run", "--rm", "--network", "host", *flags, image.tag, *migration_command(built)]
        containers.podman(*migrate, timeout=300)
        status, body = _get(f"{base}/health/ready")
        assert status == 200, body
        inside = containers.podman(
            "exec", container, "sh", "-c", 'grep ^Uid /proc/1/status; touch /app/x 2>&1; ls "$PROMETHEUS_MULTIPROC_DIR"'
        ).stdout
        assert re.search(r"^Uid:\s+10001\s", inside, re.MULTILINE)
        assert "Read-only file system" in inside
        assert len(set(re.findall(r"counter_(\d+)\.db", inside))) == 2, f"two workers write metrics: {inside}"
    finally:
        containers.podman("kube", "down", play, check=False)
        containers.podman("secret", "rm", secret_name, check=False)


def migration_command(built: list[dict[str, object]]) -> list[str]:
    """The migration Job's command, as the manifests give it."""
    job = next(d for d in built if d["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    return list(container["command"])
