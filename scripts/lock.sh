#!/usr/bin/env bash
# Refresh the dependency locks in requirements/ from pyproject.toml (`make lock` runs this).
#
#   requirements/test.lock     runtime + the `test` and `bench` extras: what `make` installs into .venv
#   requirements/runtime.lock  runtime only: what the Dockerfile installs (resolved within test.lock,
#                              so the image and the test venv run the same versions)
#   requirements/build.lock    pip and setuptools (pyproject's build-system), which install and build
#                              kabinet itself with --no-build-isolation: nothing unhashed is fetched
#
# Every transitive dependency is pinned with the sha256 of every file PyPI has for that version
# (`--generate-hashes`), for every platform (`--universal`, markers such as uvloop's are kept), so
# `pip install --require-hashes -r …` installs exactly these bytes or nothing. Needs PyPI; the
# resolver is uv, pinned below, installed into .lock-tools/ (not the project's venv).
#
#   scripts/lock.sh                 keep what is locked, change only what pyproject.toml now demands
#   scripts/lock.sh --upgrade       take the newest versions pyproject.toml allows
#   scripts/lock.sh --upgrade-package redis   just that one
# Then `make test` (the venv rebuilds itself because the lock changed) and commit requirements/.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PYTHON=${PYTHON:-python3}
TOOLS=.lock-tools
if [ ! -x "$TOOLS/bin/uv" ] || [ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PYTHON" -m venv --clear "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV="$TOOLS/bin/uv"

# PyPI only (a machine's pip.conf extra indexes must not leak into the lock); the lowest Python
# pyproject.toml accepts; the header names the command to re-run.
COMMON=(--quiet --generate-hashes --universal --python-version 3.11 --default-index https://pypi.org/simple
        --no-config --custom-compile-command "make lock")

mkdir -p requirements
"$UV" pip compile pyproject.toml --extra test --extra bench "${COMMON[@]}" "$@" -o requirements/test.lock
"$UV" pip compile pyproject.toml "${COMMON[@]}" --constraint requirements/test.lock "$@" -o requirements/runtime.lock

# The build system's requirements, read from pyproject.toml, plus pip itself.
"$PYTHON" - <<'EOF' > "$TOOLS/build.in"
import tomllib
print("pip")
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
EOF
"$UV" pip compile "$TOOLS/build.in" "${COMMON[@]}" --no-annotate "$@" -o requirements/build.lock

echo "locked: $(grep -c '==' requirements/test.lock) packages for make, $(grep -c '==' requirements/runtime.lock) for the image"
