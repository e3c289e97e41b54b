"""Bad answers get a clear message and write nothing; the auth question is really asked."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import copier
import pexpect
import pytest
import yaml

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
        ("my_api_", "end with a letter or digit"),  # a package name pyproject.toml refuses
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


@pytest.mark.parametrize("typed", ["RBAC", " rbac ", "Rbac"])
def test_auth_in_another_case_is_refused_with_the_word_to_type(template: Path, tmp_path: Path, typed: str) -> None:
    """Copier cannot rewrite an answer: the help says lowercase, and the refusal gives the exact word."""
    help_text = " ".join(yaml.safe_load((template / "copier.yml").read_text())["auth"]["help"].split())
    assert help_text.startswith("Authentication, in lowercase")
    with pytest.raises(ValueError, match="Type it in lowercase, without spaces: rbac"):
        copy(template, tmp_path / "out", project_name="my_api", auth=typed)
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
        ("--name", "my_api_", "--auth", "rbac"): "end with a letter or digit",
        ("--name", "fine"): "required: --auth",
        ("--name", "fine", "--auth", "ldap"): "invalid choice: 'ldap'",
    }
    for args, message in cases.items():
        result = init_project(template, *args, "--output-dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


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
    commit = str(yaml.safe_load((tmp_path / "my_api" / ".copier-answers.yml").read_text())["_commit"])
    run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], checkout)


def test_project_readme_layout_names_every_folder(project: Callable[..., Path]) -> None:
    """The generated README's layout lists each top-level folder, the CI workflow and the SQLite data folder."""
    root = project(auth="rbac", with_example_module=True)
    readme = (root / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = {line.split()[0] for line in layout.splitlines() if line.strip() and not line.startswith(" ")}
    folders = {f"{p.name}/" for p in root.iterdir() if p.is_dir() and p.name not in {".venv", ".git"}}
    ignored = set((root / ".gitignore").read_text().split())  # tool caches the tests leave behind
    folders -= {p for p in folders if p.startswith(".") and p in ignored}
    folders = {".github/workflows/" if f == ".github/" else f for f in folders} | {"data/"}
    assert [f for f in sorted(folders) if not any(n.startswith(f) for n in named)] == [], named
