#!/usr/bin/env python3
"""Release this template: tag the version CHANGELOG.md announces, after checking that everything agrees.

    python3 scripts/release.py --check    # say what would be released, change nothing
    python3 scripts/release.py            # create the annotated tag v<version> on HEAD

The version is the first `## X.Y.Z` heading of CHANGELOG.md; pyproject.toml's
`version` must be the same, the tree clean, the tag new and higher than every
earlier `vX.Y.Z` tag. Copier reads the tags: `copier copy` and `copier update`
then name this version instead of `0.0.0.postN.dev0+<commit>`. Pushing the tag
(`git push origin vX.Y.Z`) is left to you. Exit status: 0 done, 1 refused.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## (\d+)\.(\d+)\.(\d+)\b", re.MULTILINE)
TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


class Refused(Exception):
    """Something disagrees: the message says what."""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Refused(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def changelog_version() -> tuple[int, int, int]:
    match = HEADING.search((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    if match is None:
        raise Refused("CHANGELOG.md has no `## X.Y.Z` heading: write the release's entry first")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check() -> str:
    """The tag to create; raises Refused when anything disagrees."""
    version = changelog_version()
    text = ".".join(map(str, version))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    if declared != text:
        raise Refused(f"CHANGELOG.md announces {text} but pyproject.toml says version = {declared!r}: make them agree")
    if changed := git("status", "--porcelain").strip():
        raise Refused(f"the tree has uncommitted changes; commit them first:\n{changed}")
    tag = f"v{text}"
    tags = git("tag", "--list", "v*").split()
    if tag in tags:
        raise Refused(f"{tag} exists already (on {git('rev-list', '-n', '1', tag).strip()[:12]}): add a new entry")
    released = [tuple(int(p) for p in m.groups()) for t in tags if (m := TAG.match(t))]
    if released and version <= max(released):
        raise Refused(f"{tag} is not above the latest release v{'.'.join(map(str, max(released)))}")
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="check and say what would be tagged; change nothing")
    args = parser.parse_args(argv)
    try:
        tag = check()
        commit = git("rev-parse", "--short", "HEAD").strip()
        if args.check:
            print(f"ready: {tag} would tag {commit}")
            return 0
        git("tag", "-a", tag, "-m", f"fastapi-enterprise {tag.removeprefix('v')}")
    except Refused as exc:
        print(f"release: refused: {exc}", file=sys.stderr)
        return 1
    print(f"tagged {commit} as {tag}; publish it with `git push origin {tag}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
