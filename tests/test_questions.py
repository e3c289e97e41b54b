"""Bad answers get a clear message and write nothing; the auth question is really asked."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import copier
import pexpect
import pytest

from tests.helpers import run


def copy(template: Path, dst: Path, **data: object) -> None:
    copier.run_copy(str(template), str(dst), data=data, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-Api", "must start with a lowercase letter"),
        ("9lives", "must start with a lowercase letter"),
        ("class", "is a Python keyword"),
        ("modules", "would shadow a package"),
    ],
)
def test_invalid_project_name_is_refused(template: Path, tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        copy(template, tmp_path / "out", project_name=name, auth="rbac")
    assert not (tmp_path / "out").exists()


def test_auth_is_required_under_defaults(template: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='Question "auth" is required'):
        copy(template, tmp_path / "out", project_name="my_api")
    assert not (tmp_path / "out").exists()


def test_unknown_auth_is_refused(template: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Type keycloak .* or rbac"):
        copy(template, tmp_path / "out", project_name="my_api", auth="ldap")
    assert not (tmp_path / "out").exists()


def test_enter_does_not_pick_an_auth_mode(template: Path, tmp_path: Path) -> None:
    """In a real terminal, a bare Enter at the auth question re-asks instead of choosing."""
    dst = tmp_path / "interactive_api"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "copier", "copy", "--trust", "--vcs-ref", "HEAD", str(template), str(dst)],
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    child.expect("Render a whole project")
    child.send("\r")
    child.expect("Project name")
    child.send("\r")
    child.expect("description")
    child.send("\r")
    child.expect("Authentication")
    time.sleep(0.3)
    child.send("\r")
    assert child.expect(["Type keycloak", "Add the example module"]) == 0, "Enter silently picked an auth mode"
    child.send("keycloak\r")
    prompts = ("Keycloak base URL", "Keycloak realm", "Client id", "Add the example module", "Add OpenTelemetry")
    for prompt in prompts:
        child.expect(prompt)
        child.send("\r")
    child.expect(pexpect.EOF, timeout=180)
    answers = (dst / ".copier-answers.yml").read_text()
    assert "auth: keycloak" in answers
    assert "project_name: interactive_api" in answers


def test_model_name_that_would_be_a_keyword_file_is_refused(template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "p" / "modules" / "classes"
    dst.parent.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"would name its file class\.py, a Python keyword"):
        copy(template, dst, model_name="Class")
    assert not dst.exists()


def test_module_kind_is_the_default_inside_modules(template: Path, project, tmp_path: Path) -> None:
    dst = tmp_path / "p" / "modules" / "orders"
    dst.parent.mkdir(parents=True)
    copier.run_copy(str(template), str(dst), defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    answers = (dst / ".copier-answers.yml").read_text()
    assert "template_kind: module" in answers
    assert "module_name: orders" in answers


def init_project(template: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, template / "scripts" / "init_project.py", *args], cwd, check=False)


def test_init_project_refuses_bad_input(template: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    cases = {
        ("--name", "taken", "--auth", "rbac"): "already exists and is not empty",
        ("--name", "Bad-Name", "--auth", "rbac"): "use lowercase letters",
        ("--name", "import", "--auth", "rbac"): "is a Python keyword",
        ("--name", "fine"): "required: --auth",
        ("--name", "fine", "--auth", "ldap"): "invalid choice: 'ldap'",
    }
    for args, message in cases.items():
        result = init_project(template, *args, "--output-dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_quick_start_serves_the_example_module(template: Path, tmp_path: Path) -> None:
    """The README's first command: generate, install, migrate and serve on SQLite + memory cache."""
    port = _free_port()
    command = [sys.executable, str(template / "scripts" / "init_project.py"), "--name", "my_api", "--auth", "rbac"]
    command += ["--with-example-module", "--serve", "--port", str(port), "--output-dir", str(tmp_path)]
    server = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    health = response.status
                    break
            except OSError:
                time.sleep(0.5)
        if health != 200:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError(f"server did not come up (exit {server.poll()}):\n{server.communicate()[0][-4000:]}")
        # The example module holds personal data: reading it needs a signed-in user.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/users/", timeout=5)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5) as response:
            assert b"/api/v1/users" in response.read()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the whole group: uv and the server it runs
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            output, _ = server.communicate()
    assert "Serving on" in output
    assert (tmp_path / "my_api" / "uv.lock").is_file()


def test_init_project_never_records_a_commit_others_lack(template: Path, tmp_path: Path) -> None:
    """A dirty checkout renders its last commit, and the recorded `_commit` exists in the template repo."""
    checkout = tmp_path / "checkout"
    shutil.copytree(template, checkout)
    readme = checkout / "project_template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nUNCOMMITTED-LINE\n")
    result = init_project(checkout, "--name", "my_api", "--auth", "rbac", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "uncommitted template changes are not rendered" in result.stderr
    assert "UNCOMMITTED-LINE" not in (tmp_path / "my_api" / "README.md").read_text()
    commit = next(
        line.split(":", 1)[1].strip()
        for line in (tmp_path / "my_api" / ".copier-answers.yml").read_text().splitlines()
        if line.startswith("_commit:")
    )
    run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], checkout)
