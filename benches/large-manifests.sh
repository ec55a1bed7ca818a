#!/usr/bin/env bash
# Parse memory at the manifest limits (docs/performance.md, "Manifests too
# large to read"): generates a git repository whose manifests folder holds
# 27 files of 1,000 workloads each, just under the 16 MiB total that
# src/input_file.rs allows, then runs the release binary's `ferry validate`
# and the peer `git archive HEAD manifests` three times each under
# `/usr/bin/time -v`, printing wall time and peak memory (maximum resident
# set size) of every run.
#
#   benches/large-manifests.sh [DIR]      (default target/bench-large-manifests)
#
# FILES, PER_FILE and TOTAL (bytes) change the set: the table's other row,
# 40 files of 1.8 MB (72 MB, refused before parsing), is
#   FILES=40 PER_FILE=2900 TOTAL=72000000 benches/large-manifests.sh
# Needs python3, git and /usr/bin/time. Builds `target/release/ferry`
# unless FERRY_BIN names a binary. GENERATE_ONLY=1 only writes the set.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-$PWD/target/bench-large-manifests}
FILES=${FILES:-27}
PER_FILE=${PER_FILE:-1000}
# Just under the 16 MiB total.
TOTAL=${TOTAL:-$((16 * 1024 * 1024 - 4096))}

rm -rf "$DIR"
mkdir -p "$DIR/manifests"
python3 - "$DIR" "$FILES" "$PER_FILE" "$TOTAL" <<'PY'
import os, sys
out, files, per_file, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
manifests = os.path.join(out, "manifests")
with open(os.path.join(out, "promotion.yaml"), "w") as f:
    f.write("manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n"
            "  - name: staging\n    org: acme-staging\n    gvc: app\n    tokenEnv: CPLN_TOKEN_STAGING\n")
# The GVC, the identity and the secret the workloads use open the first
# file.
head = ("kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n"
            "---\nkind: identity\nname: worker-id\n"
            "---\nkind: secret\nname: app-config\ntype: dictionary\ndata:\n  FEATURE_FLAGS: checkout-v2\n---\n")
# One workload, the shape of manifests-example/worker.yaml (600 bytes);
# the description pads every document to the same size so that the
# files add up to just under the total.
WORKLOAD = """kind: workload
name: w{file:02d}-{n:04d}
description: {description}
spec:
  type: standard
  identityLink: //gvc/app/identity/worker-id
  containers:
    - name: main
      image: //image/worker:1.4.2
      cpu: 100m
      memory: 256Mi
      env:
        - name: QUEUE_URL
          value: amqp://queue.app.cpln.local:5672
        - name: FEATURE_FLAGS
          value: cpln://secret/app-config.FEATURE_FLAGS
  defaultOptions:
    capacityAI: false
    autoscaling:
      metric: cpu
      target: 80
      minScale: 1
      maxScale: 2
  firewallConfig:
    internal:
      inboundAllowType: none
---
"""
bare = len(WORKLOAD.format(file=0, n=0, description=""))
pad = (total - len(head)) // (files * per_file) - bare
description = ("Background jobs from the queue " * 8)[:pad].rstrip()
assert pad > 0
for file in range(files):
    with open(os.path.join(manifests, f"workers-{file:02d}.yaml"), "w") as f:
        if file == 0:
            f.write(head)
        for n in range(per_file):
            f.write(WORKLOAD.format(file=file, n=n, description=description))
PY
git -C "$DIR" init -q
git -C "$DIR" add -A
git -C "$DIR" -c user.name=bench -c user.email=bench@example.invalid commit -qm "large manifests"
echo "manifests: $(find "$DIR/manifests" -name '*.yaml' | wc -l) files, $(cat "$DIR"/manifests/*.yaml | wc -c) bytes"
if [[ -n "${GENERATE_ONLY:-}" ]]; then
  exit 0
fi

FERRY=${FERRY_BIN:-}
if [[ -z "$FERRY" ]]; then
  cargo build --release --locked --bin ferry
  FERRY=$PWD/target/release/ferry
fi

# Runs a command under /usr/bin/time -v; prints its exit code, wall time
# and peak resident memory.
measure() {
  local label=$1
  shift
  local report
  report=$(mktemp)
  local code=0
  (cd "$DIR" && /usr/bin/time -v "$@" >/dev/null 2>"$report") || code=$?
  local wall peak
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$report")
  peak=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$report")
  echo "$label: exit $code, wall $wall, peak ${peak} KB"
  rm -f "$report"
}

for run in 1 2 3; do
  measure "ferry validate (run $run)" "$FERRY" validate -f promotion.yaml
  measure "git archive (run $run)" git archive HEAD manifests
done
