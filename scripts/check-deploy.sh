#!/usr/bin/env bash
# The deployment files in deploy/ are what the tools that read them accept: the Kubernetes
# manifest against Kubernetes' own schemas (kubernetes-validate, pinned, in a private
# environment), the systemd unit with systemd's own checker and its sandboxing rated.
# Run after a build: the unit must name a ward binary that exists.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-check-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==1.37.0"
fi
"$venv/bin/kubernetes-validate" --strict deploy/kubernetes.yaml

ward="$PWD/target/debug/ward"
[ -x "$ward" ] || ward="$PWD/target/release/ward"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/ward|$ward|" deploy/ward.service > "$dir/ward.service"
systemd-analyze verify "$dir/ward.service"
# 1.8 today ("OK"); above 3.0 (30 on the scale --threshold reads) the sandboxing has been loosened.
systemd-analyze security --offline=yes --threshold=30 "$dir/ward.service" > /dev/null
echo "deploy/: the manifest and the unit pass"
