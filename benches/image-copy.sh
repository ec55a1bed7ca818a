#!/usr/bin/env bash
# Ferry's `image copy` against `skopeo copy`, same images, same registries,
# same run. Every timed run copies into a freshly started, empty destination
# registry (hyperfine --prepare), with skopeo's blob-info cache deleted, so
# neither tool can skip or mount anything it saw before.
#
#   benches/image-copy.sh [RUNS]          (default 10 runs per command)
#
# Needs: docker-registry, skopeo, hyperfine, htpasswd, python3, /usr/bin/time
# (scripts/setup.sh installs them). Builds `target/release/ferry` unless
# FERRY_BIN names a binary. Everything listens on 127.0.0.1 and is stopped by
# PID on exit. Results go to stdout and to $OUT (default target/bench-image-copy).
# DST_AUTH=token puts the destination behind token (Bearer) auth served by
# tests/it/support/tokenserver.py instead of htpasswd Basic auth (the default).
# BASELINE_BIN=path adds that Ferry build to the comparison (e.g. a previous
# commit's), to check a change against the same registries in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
OUT=${OUT:-$PWD/target/bench-image-copy}
mkdir -p "$OUT"
LAB=$(mktemp -d /tmp/ferry-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}" $(cat "$LAB"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}" $(cat "$LAB"/*.pid 2>/dev/null); do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  rm -rf "$LAB"
}
trap cleanup EXIT

if [ -z "${FERRY_BIN:-}" ]; then
  cargo build --release --quiet
  FERRY_BIN=$PWD/target/release/ferry
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { until curl -s -o /dev/null "http://$1/v2/"; do sleep 0.05; done; }

SRC_PORT=$(free_port); DST_PORT=$(free_port)
SRC=127.0.0.1:$SRC_PORT; DST=127.0.0.1:$DST_PORT
PASSWORD=bench-key-$$
htpasswd -Bbn '<token>' "$PASSWORD" > "$LAB/htpasswd"

# Source: no auth, kept for the whole run (its blobs stay in page cache).
cat > "$LAB/src.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $LAB/src}}
http: {addr: $SRC}
YAML
# Destination: htpasswd Basic auth with Control Plane's user name, or
# token auth whose token server accepts that user.
if [ "${DST_AUTH:-basic}" = token ]; then
  TOKEN_PORT=$(free_port)
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-token-issuer \
    -keyout "$LAB/key.pem" -out "$LAB/cert.pem" 2>/dev/null
  python3 tests/it/support/tokenserver.py "$TOKEN_PORT" "$LAB/key.pem" "$LAB/cert.pem" \
    bench-issuer bench-registry "$PASSWORD" 2> "$LAB/token.log" & echo $! > "$LAB/token.pid"
  AUTH="auth: {token: {realm: http://127.0.0.1:$TOKEN_PORT/token, service: bench-registry, issuer: bench-issuer, rootcertbundle: $LAB/cert.pem}}"
else
  AUTH="auth: {htpasswd: {realm: basic-realm, path: $LAB/htpasswd}}"
fi
cat > "$LAB/dst.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $LAB/dst}, delete: {enabled: true}}
http: {addr: $DST}
$AUTH
YAML
docker-registry serve "$LAB/src.yml" > "$LAB/src.log" 2>&1 & echo $! > "$LAB/src.pid"
wait_up "$SRC"

# Stops the destination by PID, wipes it and skopeo's blob-info caches, starts it again.
cat > "$LAB/reset-dst.sh" <<SH
#!/usr/bin/env bash
pid=\$(cat "$LAB/dst.pid" 2>/dev/null || true)
if [ -n "\$pid" ]; then kill "\$pid" 2>/dev/null || true; while kill -0 "\$pid" 2>/dev/null; do sleep 0.02; done; fi
rm -rf "$LAB/dst" /var/lib/containers/cache/blob-info-cache-v1.boltdb "\$HOME/.local/share/containers/cache/blob-info-cache-v1.boltdb"
docker-registry serve "$LAB/dst.yml" >> "$LAB/dst.log" 2>&1 & echo \$! > "$LAB/dst.pid"
until curl -s -o /dev/null "http://$DST/v2/"; do sleep 0.02; done
SH
chmod +x "$LAB/reset-dst.sh"

echo "== building images (random gzip layers) and loading them into the source registry" >&2
load() { # NAME LAYERS KIB
  python3 benches/support/make-oci-image.py "$LAB/layout-$1" v1 --layers "$2" --layer-kib "$3" > /dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$LAB/layout-$1:v1" "docker://$SRC/$1:v1"
  rm -rf "$LAB/layout-$1"
}
load big4 4 131072
load small50 50 256
load huge 1 1048576

export DST_CREDS="<token>:$PASSWORD"
ferry_cmd() { echo "${3:-$FERRY_BIN} image copy $SRC/$1:v1 $DST/$1:v1 --dst-creds-env DST_CREDS $2"; }
skopeo_cmd() {
  echo "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --dest-creds '<token>:$PASSWORD' docker://$SRC/$1:v1 docker://$DST/$1:v1"
}

# Other work on a shared machine changes the load over minutes, and
# hyperfine times all runs of one command before the next: so the runs go
# in ROUNDS rounds of a few runs per command, interleaving the tools, and
# the times of all rounds are pooled.
ROUNDS=${ROUNDS:-5}
bench() { # NAME
  local per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS )) round warmup
  for round in $(seq 1 "$ROUNDS"); do
    warmup=0; [ "$round" = 1 ] && warmup=1
    hyperfine --style none --warmup "$warmup" --runs "$per_round" --prepare "$LAB/reset-dst.sh" \
      --export-json "$OUT/$1.round$round.json" \
      -n "ferry (default jobs)" "$(ferry_cmd "$1" "")" \
      -n "ferry -j 6" "$(ferry_cmd "$1" "-j 6")" \
      ${BASELINE_BIN:+-n "baseline ferry" "$(ferry_cmd "$1" "" "$BASELINE_BIN")"} \
      -n "skopeo $(skopeo --version | awk '{print $3}')" "$(skopeo_cmd "$1")" > /dev/null
  done
  python3 - "$1" "$OUT"/"$1".round*.json <<'PY'
import json, statistics, sys
pooled = {}
for path in sys.argv[2:]:
    for r in json.load(open(path))["results"]:
        entry = pooled.setdefault(r["command"], {"times": [], "user": [], "system": []})
        entry["times"] += r["times"]
        entry["user"] += r.get("user_times") or [r["user"]]
        entry["system"] += r.get("system_times") or [r["system"]]
names = list(pooled)
skopeo = pooled[names[-1]]
sk_mean, sk_median = statistics.mean(skopeo["times"]), statistics.median(skopeo["times"])
for name in names:
    t = pooled[name]["times"]
    mean, median = statistics.mean(t), statistics.median(t)
    print(f"{sys.argv[1]:8} {name:22} n={len(t):2} mean {mean:.3f} s ± {statistics.stdev(t):.3f}"
          f"  median {median:.3f} s  min {min(t):.3f}  user {statistics.mean(pooled[name]['user']):.2f} s"
          f"  sys {statistics.mean(pooled[name]['system']):.2f} s"
          f"  ratio(mean) {mean / sk_mean:.2f}  ratio(median) {median / sk_median:.2f}")
PY
}

echo "== 4 x 128 MiB" >&2
bench big4 | tee "$OUT/big4.txt"
echo "== 50 x 256 KiB" >&2
bench small50 | tee "$OUT/small50.txt"

echo "== peak memory copying a 1 GiB layer (fresh destination each time)" >&2
: > "$OUT/memory.txt"
for tool in ferry skopeo; do
  "$LAB/reset-dst.sh"
  if [ "$tool" = ferry ]; then cmd=$(ferry_cmd huge ""); else cmd=$(skopeo_cmd huge); fi
  /usr/bin/time -f "huge     $tool: peak RSS %M KiB, wall %e s, user %U s, sys %S s" bash -c "exec $cmd" 2>&1 >/dev/null \
    | tail -1 | tee -a "$OUT/memory.txt"
done
