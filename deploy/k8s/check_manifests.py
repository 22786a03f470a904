"""What the Kubernetes API schemas cannot see in deploy/k8s/: run by deploy/k8s/validate.sh.

- kustomization.yaml lists exactly the manifests of the directory, and every object is in its namespace;
- no secret is committed: no Secret object, no literal value for an env var that names a secret, key or
  password, no password inside a redis:// URL; every secretKeyRef names the one Secret the README
  tells the user to create, with a key the README names;
- every env var the manifests set is in the README's configuration tables (`NAME` in "## Configuration");
- every Deployment: readiness GET /health, liveness GET /health/live on a port it declares, a preStop
  sleep, CPU and memory requests, and a terminationGracePeriodSeconds that covers the preStop sleep plus
  the hub's shutdown_grace (HUB_SHUTDOWN_GRACE, else the default in hub-server/src/config.rs) plus a margin;
  a Service, a PodDisruptionBudget and a CPU HorizontalPodAutoscaler that select it;
- the hubs reach Redis through REDIS_CLUSTER_NODES (DESIGN.md section 14), not a single REDIS_URL.

Usage: check_manifests.py DIR README CONFIG_RS. Prints one line per finding; exit 1 when there is any.
"""

import os
import re
import sys

import yaml

MARGIN_SECONDS = 2
SECRET_LIKE = re.compile(r"SECRET|PASSWORD|_KEYS?$|TOKEN|REDIS_CLUSTER_NODES|REDIS_URL")
URL_WITH_PASSWORD = re.compile(r"rediss?://[^/@\s,]*:[^/@\s,]+@")


def duration_seconds(text):
    """humantime as the hub reads it, for the forms the manifests use: 500ms, 10s, 1m, 1h."""
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"cannot read duration {text!r}")
    for number, unit in parts:
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def section(markdown, heading):
    """The text under a '## heading' up to the next '## ' heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    return match.group(1) if match else ""


def default_shutdown_grace(config_rs):
    match = re.search(r'^shutdown_grace\s*=\s*"([^"]+)"', config_rs, re.M)
    if not match:
        raise ValueError("no shutdown_grace default in hub-server/src/config.rs")
    return duration_seconds(match.group(1))


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def main(directory, readme_path, config_rs_path):
    problems = []
    fail = problems.append
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    with open(config_rs_path, encoding="utf-8") as f:
        grace_default = default_shutdown_grace(f.read())
    config_section = section(readme, "Configuration")
    k8s_section = section(readme, "Kubernetes")
    if not config_section:
        fail(f"{readme_path}: no '## Configuration' section")
    if not k8s_section:
        fail(f"{readme_path}: no '## Kubernetes' section (it must say how to create the Secret)")

    with open(os.path.join(directory, "kustomization.yaml"), encoding="utf-8") as f:
        kustomization = yaml.safe_load(f)
    namespace = kustomization.get("namespace")
    listed = set(kustomization.get("resources", []))
    present = {
        n for n in os.listdir(directory) if n.endswith(".yaml") and n != "kustomization.yaml"
    }
    for name in sorted(present - listed):
        fail(f"{name}: not listed in kustomization.yaml's resources")
    for name in sorted(listed - present):
        fail(f"kustomization.yaml lists {name}, which is not in {directory}")

    objects = []
    for name in sorted(present):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    objects.append((name, doc))
    by_kind = {}
    for name, obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append((name, obj))
        where = f"{name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        if obj.get("kind") == "Secret":
            fail(f"{where}: a Secret is committed; create it at deploy time instead (README)")
        if obj.get("kind") != "Namespace" and obj.get("metadata", {}).get("namespace") != namespace:
            fail(f"{where}: namespace is not {namespace!r} (kustomization.yaml's)")
        for url in URL_WITH_PASSWORD.findall(yaml.safe_dump(obj)):
            fail(f"{where}: a password in a Redis URL ({url.split(':')[0]}://…)")

    secret_refs = set()
    deployments = by_kind.get("Deployment", [])
    if not deployments:
        fail("no Deployment at all")
    for name, dep in deployments:
        dep_name = dep["metadata"]["name"]
        where = f"{name}: Deployment {dep_name}"
        pod = dep["spec"]["template"]
        pod_labels = pod["metadata"].get("labels", {})
        if not labels_match(dep["spec"]["selector"].get("matchLabels"), pod_labels):
            fail(f"{where}: its selector does not match its pod labels")
        spec = pod["spec"]
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec["containers"]:
            cw = f"{where}, container {c['name']}"
            ports = {p.get("name") for p in c.get("ports", [])} | {
                p["containerPort"] for p in c.get("ports", [])
            }
            if c.get("envFrom"):
                fail(f"{cw}: envFrom hides which variables are set; list them under env")
            env = {}
            for e in c.get("env", []):
                env[e["name"]] = e
                if f"`{e['name']}`" not in config_section:
                    fail(f"{cw}: env {e['name']} is not in README's configuration tables")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret_refs.add((ref["name"], ref["key"]))
                elif SECRET_LIKE.search(e["name"]):
                    fail(f"{cw}: env {e['name']} holds a secret: take it from a Secret (secretKeyRef)")
            for probe, path in (("readinessProbe", "/health"), ("livenessProbe", "/health/live")):
                get = c.get(probe, {}).get("httpGet", {})
                if get.get("path") != path:
                    fail(f"{cw}: {probe} is not GET {path} (it is {get.get('path')!r})")
                elif get.get("port") not in ports:
                    fail(f"{cw}: {probe}'s port {get.get('port')!r} is not a port of the container")
            command = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if len(command) != 2 or command[0] != "sleep" or not command[1].isdigit():
                fail(f"{cw}: no preStop ['sleep', N] to leave the Service's endpoints before SIGTERM")
                pre_stop = 0
            else:
                pre_stop = int(command[1])
            requests = c.get("resources", {}).get("requests", {})
            for resource in ("cpu", "memory"):
                if resource not in requests:
                    fail(f"{cw}: no {resource} request (the HPA and the scheduler need it)")
            # The image runs hub-server unless told otherwise.
            is_hub = c.get("command") in (None, ["hub-server"]) or "HUB_SHUTDOWN_GRACE" in env
            if is_hub:
                grace_value = env.get("HUB_SHUTDOWN_GRACE", {}).get("value")
                drain = duration_seconds(grace_value) if grace_value else grace_default
                need = pre_stop + drain + MARGIN_SECONDS
                if grace < need:
                    fail(
                        f"{cw}: terminationGracePeriodSeconds {grace} < preStop {pre_stop} s + "
                        f"shutdown_grace {drain:g} s + {MARGIN_SECONDS} s: SIGKILL before the drain ends"
                    )
                if "REDIS_CLUSTER_NODES" not in env:
                    fail(f"{cw}: a hub without REDIS_CLUSTER_NODES (DESIGN.md section 14)")
                if "REDIS_URL" in env or "HUB_REDIS_URL" in env:
                    fail(f"{cw}: REDIS_URL next to REDIS_CLUSTER_NODES: one Redis, or the cluster")
            elif grace < pre_stop + MARGIN_SECONDS:
                fail(f"{cw}: terminationGracePeriodSeconds {grace} < preStop {pre_stop} s + margin")

        def selecting(kind, select):
            return [o for _, o in by_kind.get(kind, []) if select(o)]

        services = selecting("Service", lambda s: labels_match(s["spec"].get("selector"), pod_labels))
        if not services:
            fail(f"{where}: no Service selects its pods")
        declared = [
            p.get(k)
            for c in spec["containers"]
            for p in c.get("ports", [])
            for k in ("name", "containerPort")
        ]
        for svc in services:
            for port in svc["spec"]["ports"]:
                if port.get("targetPort", port["port"]) not in declared:
                    fail(f"Service {svc['metadata']['name']}: targetPort {port.get('targetPort')!r} is no port of {dep_name}")
        pdbs = selecting(
            "PodDisruptionBudget",
            lambda p: labels_match(p["spec"]["selector"].get("matchLabels"), pod_labels),
        )
        if not pdbs:
            fail(f"{where}: no PodDisruptionBudget selects its pods")
        hpas = selecting(
            "HorizontalPodAutoscaler",
            lambda h: h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == dep_name,
        )
        if not any(
            m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
            for h in hpas
            for m in h["spec"].get("metrics", [])
        ):
            fail(f"{where}: no HorizontalPodAutoscaler on CPU scales it")

    for secret, key in sorted(secret_refs):
        if secret not in k8s_section or key not in k8s_section:
            fail(f"secret {secret}, key {key}: README's Kubernetes section does not say how to create it")
    for line in problems:
        print(f"deploy/k8s: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("Usage: ")[1])
    sys.exit(main(*sys.argv[1:]))
