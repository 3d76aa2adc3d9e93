#!/usr/bin/env bash
# A rollback of the demo Engine from the terminal, from nothing:
#   1. Docker, Compose v2 and a registry on 127.0.0.1:5000 (skipped when already there),
#   2. rollbot installed, the demo Engine built as 2.3.1 (healthy, brain schema 1) and 2.4.0
#      (broken, migrates the brain to schema 2),
#   3. in $DEMO_DIR: 2.3.1 deployed and remembering, a snapshot, the upgrade to 2.4.0, turns of
#      three users in the bad window (one sends an email), then `rollbot rollback engine 2.3.1
#      --yes`, which restores the brain too and ends as a partial rollback (the email stays sent). rollbot runs on its embedded defaults except for the target in rollbot.yaml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
demo_dir=${DEMO_DIR:-$PWD/rollbot-demo}
base_image=${DEMO_BASE_IMAGE:-python:3.12-slim}
repository=127.0.0.1:5000/rollbot-demo/engine

say() { printf '\n== %s\n' "$*"; }

say "Docker, Compose v2 and the registry"
bash "$root/.ci/setup.sh"

say "installing rollbot"
pip install --quiet --require-hashes -r "$root/requirements/runtime.lock"
pip install --quiet --no-deps --no-build-isolation "$root"

if ! docker image inspect "$base_image" >/dev/null 2>&1 && ! docker pull --quiet "$base_image" >/dev/null 2>&1; then
  echo "cannot pull $base_image (no network?); using the locally built rollbot-test-base:bookworm"
  base_image=rollbot-test-base:bookworm
fi

say "building the demo Engine 2.3.1 (healthy) and 2.4.0 (broken) on $base_image"
for version in 2.3.1 2.4.0; do
  broken=0 schema=1; [ "$version" = 2.4.0 ] && broken=1 schema=2
  DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "ENGINE_VERSION=$version" --build-arg "ENGINE_BROKEN=$broken" \
    --build-arg "ENGINE_BRAIN_SCHEMA=$schema" --tag "$repository:$version" "$here/engine" >/dev/null
  docker push --quiet "$repository:$version" >/dev/null
done

say "deploying the demo on 2.3.1 in $demo_dir"
mkdir -p "$demo_dir"
if [ -f "$demo_dir/docker-compose.yml" ]; then
  docker compose -f "$demo_dir/docker-compose.yml" down --timeout 5 >/dev/null 2>&1 || true
fi
rm -rf "$demo_dir/data"
sed 's|rollbot-demo/engine:2.4.0|rollbot-demo/engine:2.3.1|' "$here/docker-compose.yml" >"$demo_dir/docker-compose.yml"
cp "$here/rollbot.yaml" "$demo_dir/"
cd "$demo_dir"
mkdir -p data
wait_for_engine() {
  for _ in $(seq 1 60); do curl -s http://127.0.0.1:8080/health >/dev/null && return; sleep 0.5; done
}
remember() { for i in $(seq 1 "$1"); do curl -s -X POST -d "turn $i" http://127.0.0.1:8080/remember >/dev/null; done; }
# A turn saying who and what: turn USER CONVERSATION [TOOL]
turn() { curl -s -X POST -d "{\"user\": \"$1\", \"conversation\": \"$2\", \"tool\": \"${3:-search}\"}" http://127.0.0.1:8080/remember >/dev/null; }
docker compose up --detach --quiet-pull engine
wait_for_engine
remember 3
echo "/health says: $(curl -s http://127.0.0.1:8080/health)"

say "rollbot snapshot engine (before the upgrade)"
rollbot --config rollbot.yaml snapshot engine

say "upgrading to 2.4.0: it migrates the brain and breaks; turns of three users land in the bad window, one sends an email"
sed -i 's|rollbot-demo/engine:2.3.1|rollbot-demo/engine:2.4.0|' docker-compose.yml
docker compose up --detach --quiet-pull engine
wait_for_engine
turn U1 C1; turn U2 C2 send_email; turn U3 C3
echo "/health says: $(curl -s http://127.0.0.1:8080/health)"

say "rollbot rollback engine 2.3.1 --yes"
rollbot --config rollbot.yaml rollback engine 2.3.1 --yes --reason "health failing since the 2.4.0 upgrade"

say "rollbot history"
rollbot --config rollbot.yaml history
echo
echo "/health says: $(curl -s http://127.0.0.1:8080/health)"
echo "The demo keeps running in $demo_dir; stop it with: docker compose -f $demo_dir/docker-compose.yml down"
