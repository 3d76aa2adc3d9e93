#!/usr/bin/env bash
# Refreshes the locks every install of rollbot uses: requirements/test.lock (CI and the README's
# test command) and requirements/runtime.lock (the Dockerfile and the README's run command). One
# resolution: the runtime lock is constrained by the test lock, so both pin the same versions.
# Versions already pinned are kept; `bash requirements/refresh.sh --upgrade` moves to the newest
# allowed by pyproject.toml, and `--upgrade-package NAME` moves one. Needs uv (pip install uv).
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet "$@")
uv pip compile pyproject.toml requirements/build.in --extra test "${common[@]}" -o requirements/test.lock
uv pip compile pyproject.toml requirements/build.in --constraint requirements/test.lock "${common[@]}" \
  -o requirements/runtime.lock
