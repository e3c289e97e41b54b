"""Podman for the template's container tests: configuration, a base image, the reason when absent.

No container registry is reachable from where this suite runs, so the base
image is made from Debian's packages with debootstrap (a few minutes, once) and
cached under ~/.cache/fastapi-enterprise/; a new machine builds it itself.
Podman runs with runc and without default ulimits (crun and the default
RLIMIT_NOFILE fail in unprivileged sandboxes); that configuration lives in a
file of ours pointed at by CONTAINERS_CONF, so nothing in /etc is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import run

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastapi-enterprise"
BASE_IMAGE = "localhost/fastapi-enterprise-base:bookworm"
BASE_TARBALL = CACHE / "debian-bookworm-python.tar"
SUITE = "bookworm"  # Python 3.11, the oldest the generated project supports
PACKAGES = "python3,python3-venv,ca-certificates"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
"""
TOOLS = ("podman", "runc", "debootstrap")


def podman_env() -> dict[str, str]:
    """Environment for podman and podman-compose: our containers.conf."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.is_file() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return {"CONTAINERS_CONF": str(conf)}


def missing() -> str | None:
    """None when podman can build and run here, else why not."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install podman runc debootstrap)"
    result = subprocess.run(
        ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
        env={**os.environ, **podman_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return f"podman does not work here: {result.stderr.strip()[-300:]}"
    return None


def podman(*args: str | Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return run(["podman", *args], Path.cwd(), env=podman_env(), check=check, timeout=timeout)


def debian_mirror() -> str:
    """The Debian mirror apt already uses (the one this machine can reach)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        for match in re.finditer(r"(https?://\S+/debian)/?(?:\s|$)", path.read_text(errors="replace")):
            return match.group(1)
    return FALLBACK_MIRROR


def ensure_base_image() -> tuple[str, float]:
    """The base image's name, and the seconds spent making it (0 when it was there)."""
    started = time.monotonic()
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE, 0.0
    if not BASE_TARBALL.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            bootstrap = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, rootfs, debian_mirror()]
            run(bootstrap, CACHE, timeout=1800)
            shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
            partial = BASE_TARBALL.with_suffix(".partial")
            run(["tar", "-C", rootfs, "-cf", partial, "."], CACHE, timeout=600)
            partial.rename(BASE_TARBALL)
    podman("import", "--change", "ENV=LANG=C.UTF-8", BASE_TARBALL, BASE_IMAGE, timeout=600)
    return BASE_IMAGE, time.monotonic() - started
