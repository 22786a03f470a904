#!/usr/bin/env bash
# Validates deploy/k8s/ offline, for `make test`:
#   1. every manifest against the Kubernetes API schemas of K8S_VERSIONS (kubernetes-validate --strict:
#      unknown fields are errors too), with the schemas that ship inside the PyPI package, pinned in
#      deploy/k8s/requirements.txt and installed into target/k8s-validate-venv on first use. The
#      validation runs in a network namespace of its own when this machine allows one (unshare -n), so
#      a validator that reached for the network would fail here rather than pass by luck;
#   2. what schemas cannot see (deploy/k8s/check_manifests.py): every env var the manifests set is in
#      README's configuration tables, no secret is committed, probes, preStop and the grace period
#      against the hub's shutdown_grace, a Service / PodDisruptionBudget / CPU HPA per Deployment;
#   3. that both checks can fail: broken copies of the manifests must be refused.
# Needs python3 with venv (Debian: python3-venv, installed here when missing and run as root) and PyPI
# for the first install only. About 10 s once the venv exists.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

K8S_DIR=deploy/k8s
# The oldest Kubernetes we claim (autoscaling/v2, policy/v1 and everything used here are GA there) and
# the newest the pinned package knows.
K8S_VERSIONS=(1.30.0 1.37.0)
VENV=target/k8s-validate-venv

say() { printf '==> k8s: %s\n' "$*" >&2; }
die() { printf 'error: k8s: %s\n' "$*" >&2; exit 1; }

venv_ok() { python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }
if ! venv_ok; then
  command -v python3 >/dev/null 2>&1 || die "python3 is missing (Debian: apt-get install python3 python3-venv)"
  [ "$(id -u)" -eq 0 ] || die "python3's venv module is missing: sudo apt-get install python3-venv"
  say "installing python3-venv (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
  venv_ok || die "python3-venv did not install"
fi

# The venv is made again whenever requirements.txt changes (a copy of it inside marks what it holds).
if ! cmp -s "$K8S_DIR/requirements.txt" "$VENV/requirements.txt" 2>/dev/null; then
  say "installing the pinned kubernetes-validate into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$K8S_DIR/requirements.txt" \
    || { rm -rf "$VENV"; die "pip install -r $K8S_DIR/requirements.txt failed"; }
  cp "$K8S_DIR/requirements.txt" "$VENV/requirements.txt"
fi

# Offline when this machine lets us make a network namespace (root, or unprivileged user namespaces).
offline=()
if unshare -n true >/dev/null 2>&1; then
  offline=(unshare -n)
elif unshare -rn true >/dev/null 2>&1; then
  offline=(unshare -rn)
fi

# schema_check DIR: every manifest of DIR (kustomization.yaml is no Kubernetes object) against each
# version's schemas. Prints the validator's findings; exit 1 on any.
schema_check() {
  local dir=$1 v rc=0 files=()
  mapfile -t files < <(find "$dir" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
  [ ${#files[@]} -gt 0 ] || { echo "no manifests in $dir"; return 1; }
  for v in "${K8S_VERSIONS[@]}"; do
    "${offline[@]}" "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${files[@]}" || rc=1
  done
  return $rc
}

content_check() { # content_check DIR [README]
  "${offline[@]}" "$VENV/bin/python" "$K8S_DIR/check_manifests.py" "$1" "${2:-README.md}" hub-server/src/config.rs
}

schema_check "$K8S_DIR" || die "the manifests do not match the Kubernetes API schemas (above)"
say "schemas: $(find "$K8S_DIR" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | wc -l) files valid against Kubernetes ${K8S_VERSIONS[*]} (kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tr -d '\n'), --strict${offline:+, no network})"
content_check "$K8S_DIR" || die "deploy/k8s/ fails the checks above"
say "content: env vars in README's configuration tables, no committed secret, probes, preStop, grace period, Service/PDB/HPA per Deployment"

# 3. The checks must be able to fail: each broken copy below must be refused, for the reason given.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
broken() { # broken NAME SED-SCRIPT FILE: a copy of deploy/k8s/ with one edit, in $tmp/NAME
  mkdir -p "$tmp/$1"
  cp "$K8S_DIR"/*.yaml "$tmp/$1/"
  sed -i "$2" "$tmp/$1/$3"
  ! cmp -s "$K8S_DIR/$3" "$tmp/$1/$3" || die "self-test $1: the edit changed nothing (the manifests moved: update validate.sh)"
}
expect_refused() { # expect_refused WHAT PATTERN COMMAND...: COMMAND fails, saying PATTERN
  local what=$1 pattern=$2 out
  shift 2
  if out="$("$@" 2>&1)"; then die "self-test: $what was accepted"; fi
  grep -q -- "$pattern" <<<"$out" || die "self-test: $what was refused, but not for the expected reason: $out"
}
broken schema 's/^  replicas: 3$/  replicas: three/' hub-server.yaml
expect_refused "replicas: three" "three" schema_check "$tmp/schema"
broken unknown-field 's/^          imagePullPolicy: IfNotPresent$/          imagePullPolice: IfNotPresent/' hub-client-web.yaml
expect_refused "an unknown field" "imagePullPolice" schema_check "$tmp/unknown-field"
broken env 's/^            - name: HUB_LOG_FORMAT$/            - name: HUB_NOT_A_SETTING/' hub-server.yaml
expect_refused "an env var missing from README" "HUB_NOT_A_SETTING is not in README" content_check "$tmp/env"
broken grace 's/^      terminationGracePeriodSeconds: 20$/      terminationGracePeriodSeconds: 12/' hub-server.yaml
expect_refused "a grace period shorter than preStop + shutdown_grace" "terminationGracePeriodSeconds 12" content_check "$tmp/grace"
broken liveness 's|^              path: /health/live$|              path: /health|' hub-server.yaml
expect_refused "liveness on /health" "livenessProbe is not GET /health/live" content_check "$tmp/liveness"
broken secret 's|^              value: https://chat.example.com$|              value: https://chat.example.com\n            - name: WEB_JWT_SECRET\n              value: hunter2hunter2hunter2hunter2hunter2|' hub-server.yaml
expect_refused "a literal secret" "WEB_JWT_SECRET holds a secret" content_check "$tmp/secret"
printf 'x\n## Configuration\n`HUB_LISTEN`\n' >"$tmp/README-without-k8s.md"
expect_refused "a README without the Secret's keys" "README's Kubernetes section" content_check "$K8S_DIR" "$tmp/README-without-k8s.md"
say "self-test: 7 broken copies refused, each for its reason"
say "deploy/k8s/ is valid"
