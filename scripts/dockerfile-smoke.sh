#!/usr/bin/env bash
# Runs the Dockerfile's build-stage commands as a script in a scratch copy of
# the repository (no container engine here), then starts the result the way
# the runtime stage does — `node bin/gatehouse.js serve` with only production
# dependencies — against a real PostgreSQL, and checks /readyz and a clean
# SIGTERM. Usage: scripts/dockerfile-smoke.sh [DATABASE_SERVER_URL]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
server="${1:-${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}}"
work="$(mktemp -d)"
db="gh_docker_smoke_$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# COPY package.json package-lock.json ./ ; COPY . .  (what .dockerignore lets through: tracked files)
(cd "$root" && git ls-files -z --cached --others --exclude-standard | grep -zv '^bench/results/' | xargs -0 tar -cf - ) | tar -xf - -C "$work"
cd "$work"
# The build stage's RUN lines, in order, exactly as written in the Dockerfile.
awk '/^FROM .* AS build/{b=1;next} /^FROM /{b=0} b && /^RUN /{sub(/^RUN /,""); print}' Dockerfile > build-steps.sh
echo "build steps:"; sed 's/^/  /' build-steps.sh
bash -euo pipefail build-steps.sh
for d in vitest tsx eslint supertest; do test ! -e "node_modules/$d" || { echo "build tool $d survived npm prune"; exit 1; }; done

psql "$server" -qc "CREATE DATABASE $db" >/dev/null
url="$(node -e "const u=new URL(process.argv[1]); u.pathname='/$db'; console.log(u.toString())" "$server")"
port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
NODE_ENV=production DATABASE_URL="$url" ISSUER="https://id.example.com" HOST=127.0.0.1 PORT="$port" \
  COOKIE_SECRETS="$(node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")" \
  KEY_ENCRYPTION_KEY="$(node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")" \
  METRICS_TOKEN="$(node -e "console.log(require('crypto').randomBytes(32).toString('hex'))")" \
  DATA_DIR="$work/.data" LOG_LEVEL=warn node bin/gatehouse.js serve > serve.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat serve.log; echo "server exited during start-up"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz"; echo
curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" | grep -q '"issuer":"https://id.example.com"'
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
pid=""
[ "$status" -eq 0 ] || { cat serve.log; echo "serve exited with $status after SIGTERM"; exit 1; }
echo "dockerfile smoke: ok"
