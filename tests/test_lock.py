"""The dependency locks (issue 21) agree with pyproject.toml, and the installs use them.

requirements/*.lock are written by `make lock` (scripts/lock.sh); `make` builds .venv from test.lock and
the Dockerfile the image from runtime.lock, both with `pip install --require-hashes`. Editing a
dependency in pyproject.toml without re-locking fails here, before any install does. No network."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCKS = ROOT / "requirements"
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]*))?")


def entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) of one lock file; continuation lines joined, comments dropped."""
    text = (LOCKS / lock).read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0] if not line.lstrip().startswith("--hash") else line for line in text.splitlines()]
    joined = re.sub(r"\\\s*\n\s*", " ", "\n".join(lines))
    found: dict[str, tuple[str, list[str]]] = {}
    for line in filter(None, (line.strip() for line in joined.splitlines())):
        match = ENTRY.match(line)
        assert match, f"{lock}: not a pinned requirement: {line[:80]}"
        name = canonicalize_name(match["name"])
        assert name not in found, f"{lock}: {name} twice"
        found[name] = (match["version"], re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
    return found


RUNTIME = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
TEST_EXTRA = [Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"]["test"]]
BENCH_EXTRA = [Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"]["bench"]]  # py-spy: in the one venv too
BUILD = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]] + [Requirement("pip")]


@pytest.mark.parametrize("lock, requirements", [
    ("runtime.lock", RUNTIME), ("test.lock", RUNTIME + TEST_EXTRA + BENCH_EXTRA), ("build.lock", BUILD),
])
def test_every_requirement_is_locked_at_a_version_it_allows(lock, requirements):
    locked = entries(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is in pyproject.toml but not in requirements/{lock}: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"pyproject.toml says {requirement}, requirements/{lock} has {version}: run `make lock`")


@pytest.mark.parametrize("lock", ["runtime.lock", "test.lock", "build.lock"])
def test_every_locked_package_has_hashes(lock):
    locked = entries(lock)
    assert locked
    for name, (_, hashes) in locked.items():
        assert hashes, f"requirements/{lock}: {name} has no --hash (pip --require-hashes would refuse it)"


def test_the_image_runs_the_versions_the_tests_run():
    """runtime.lock is resolved within test.lock: no runtime package at another version in the image."""
    runtime, test = entries("runtime.lock"), entries("test.lock")
    assert {name: version for name, (version, _) in runtime.items() if test.get(name, ("",))[0] != version} == {}
    test_only = {canonicalize_name(r.name) for r in TEST_EXTRA} - {canonicalize_name(r.name) for r in RUNTIME}
    assert "pytest" in test_only and "pytest" not in runtime


def test_make_and_the_dockerfile_install_from_the_locks():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "install --require-hashes -r requirements/test.lock" in makefile
    assert "install --no-deps --no-build-isolation -e ." in makefile
    assert re.search(r"^STAMP := .*pyproject\.toml \$\(LOCKS\)", makefile, re.M), "the venv must follow the lock"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "install --require-hashes -r requirements/runtime.lock" in dockerfile
    assert "install --no-deps --no-build-isolation ." in dockerfile
    # every package pyproject.toml ships is copied into the image (a missing one breaks its imports)
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, re.M))
    packages = {pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"the Dockerfile does not COPY {sorted(packages - copied)}"


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", "data", ".env", "tests", "bench", "**/node_modules", "**/__pycache__"} <= ignored
