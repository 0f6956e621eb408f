"""Offline validation of deploy/: yamllint on every YAML file, then structural checks of the
Kubernetes manifests and the compose file against what the server needs (no cluster, no
container engine): native gRPC probes on the gRPC port (readiness "", liveness "liveness"), a
termination grace period longer than the server's drain, the tenant Secret mounted where the
config points, interchangeable replicas (two or more, rolling updates that never go below the
wanted count, a PodDisruptionBudget, no prompt volume, the store URL from a Secret holding only a
placeholder password), the development PostgreSQL and the InferencePool example wired to the
names the rest uses (its metric names must exist in server/metrics.cc), a GPU request,
non-root, the compose file's replicas behind nginx, and a JSON config the server's option names
accept. Exit 0 when everything holds."""
import json
import os
import shutil
import subprocess
import sys

import yaml

root = sys.argv[1]
deploy = os.path.join(root, "deploy")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


yaml_files = []
for dirpath, _, files in os.walk(deploy):
    yaml_files += [os.path.join(dirpath, f) for f in files if f.endswith((".yaml", ".yml"))]
lint = subprocess.run(["yamllint", "-d", "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}"]
                      + yaml_files, capture_output=True, text=True)
check(lint.returncode == 0, "yamllint:\n" + lint.stdout + lint.stderr)

def load_k8s(directory):
    out = {}
    for f in sorted(os.listdir(directory)):
        if f.endswith(".yaml") and f != "kustomization.yaml":
            for d in yaml.safe_load_all(open(os.path.join(directory, f))):
                check("apiVersion" in d and "kind" in d and "metadata" in d, f + ": missing apiVersion/kind/metadata")
                out[(d["kind"], d["metadata"]["name"])] = d
    return out


k8s_dir = os.path.join(deploy, "k8s")
docs = load_k8s(k8s_dir)
kinds = {k for k, _ in docs}
for kind in ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"]:
    check(kind in kinds, "no " + kind)
check("PersistentVolumeClaim" not in kinds, "replicas must not share a prompt volume (prompts live in PostgreSQL)")
dep = docs[("Deployment", "softserve")]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(c["readinessProbe"]["grpc"]["port"] == ports["grpc"], "readiness probe is not a gRPC probe on the gRPC port")
check(c["readinessProbe"]["grpc"].get("service", "") == "", "readiness must check service \"\"")
check(c["livenessProbe"]["grpc"]["service"] == "liveness", "liveness must check service \"liveness\"")
config = json.loads(docs[("ConfigMap", "softserve-config")]["data"]["softserve.json"])
# SIGTERM to exit: the drain notice (NOT_SERVING while still listening; the server's default is
# 5 s), the drain, then gRPC's 1 s shutdown.
stop_seconds = config.get("drain_notice_seconds", 5) + config["drain_seconds"] + 1
check(pod["terminationGracePeriodSeconds"] > stop_seconds,
      "terminationGracePeriodSeconds must exceed drain_notice_seconds + drain_seconds + the 1 s gRPC shutdown")
check(c["resources"]["requests"].get("nvidia.com/gpu") == 1, "no GPU request")
check(pod["securityContext"]["runAsNonRoot"] is True, "pod may run as root")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
check(all("persistentVolumeClaim" not in v for v in vols.values()), "a replica mounts a PersistentVolumeClaim")
tenant_dir = os.path.dirname(config["tenants_file"])
tenant_vol = [n for n in mounts if mounts[n] == tenant_dir]
check(tenant_vol and vols[tenant_vol[0]].get("secret", {}).get("secretName") == "softserve-tenants",
      "tenants_file is not read from the Secret")
tenants = json.loads(docs[("Secret", "softserve-tenants")]["stringData"]["tenants.json"])
# No working secret is shipped: every digest is a placeholder the server refuses to start with.
check(all("REPLACE" in t["api_key_sha256"] for t in tenants["tenants"]), "the Secret ships a usable key digest")
example = json.load(open(os.path.join(deploy, "config", "tenants.example.json")))
check(all("REPLACE" in t["api_key_sha256"] for t in example["tenants"]), "tenants.example.json ships a usable key digest")
svc = docs[("Service", "softserve")]
labels = dep["spec"]["selector"]["matchLabels"]
check(svc["spec"]["selector"] == labels, "Service selector does not match the pods")

# Replicas: two or more, upgrades that add before they remove, a disruption budget.
check(dep["spec"]["replicas"] >= 2, "fewer than two replicas")
strategy = dep["spec"]["strategy"]
check(strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0,
      "upgrades must be RollingUpdate with maxUnavailable 0")
pdb = [d for (k, _), d in docs.items() if k == "PodDisruptionBudget"][0]
check(pdb["spec"]["selector"]["matchLabels"] == labels and pdb["spec"].get("minAvailable", 0) >= 1,
      "the PodDisruptionBudget must keep at least one softserve pod")
# The store URL: from a Secret, expanded into --store-url.
args = c["args"]
check("--store-url" in args and args[args.index("--store-url") + 1] == "$(SOFTSERVE_STORE_URL)",
      "the server is not given --store-url $(SOFTSERVE_STORE_URL)")
env = {e["name"]: e for e in c.get("env", [])}
ref = env.get("SOFTSERVE_STORE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
store_secret = docs.get(("Secret", ref.get("name", "")), {})
url = store_secret.get("stringData", {}).get(ref.get("key", ""), "")
check(url.startswith("postgresql://") and "REPLACE" in url, "the store URL Secret must hold a postgresql:// URL "
      "with a placeholder password")

# The development PostgreSQL: a StatefulSet behind the Service the example URL names.
dev = load_k8s(os.path.join(k8s_dir, "dev-postgres"))
check(("StatefulSet", "softserve-postgres") in dev, "no development PostgreSQL StatefulSet")
check(("Service", "softserve-postgres") in dev and "@softserve-postgres:5432/" in url,
      "the store URL does not point at the development PostgreSQL Service")
check("REPLACE" in dev.get(("Secret", "softserve-postgres"), {}).get("stringData", {}).get("password", ""),
      "the development PostgreSQL ships a usable password")

# The Gateway API Inference Extension example: the pool selects the pods on the gRPC port, and
# the endpoint picker reads metrics the server really exports.
gw = load_k8s(os.path.join(k8s_dir, "gateway"))
pool = gw.get(("InferencePool", "softserve"), {})
check(pool.get("spec", {}).get("selector", {}).get("matchLabels") == labels, "the InferencePool does not select the pods")
check(pool.get("spec", {}).get("targetPorts", [{}])[0].get("number") == ports["grpc"], "the InferencePool's port is not gRPC's")
epp = gw.get(("Deployment", "softserve-epp"), {})
epp_args = epp.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("args", [])
metrics_source = open(os.path.join(root, "server", "metrics.cc")).read()
for flag in ["--total-queued-requests-metric=", "--kv-cache-usage-percentage-metric=", "--model-server-metrics-port="]:
    check(any(a.startswith(flag) for a in epp_args), "the endpoint picker has no " + flag)
for a in epp_args:
    if a.endswith("-metric=") or not a.startswith("--") or "-metric=" not in a:
        continue
    name = a.split("=", 1)[1]
    check('"%s"' % name in metrics_source, "the endpoint picker reads %s, which server/metrics.cc does not export" % name)
check(any(a == "--model-server-metrics-port=%d" % ports["metrics"] for a in epp_args),
      "the endpoint picker does not scrape the metrics port")

compose = yaml.safe_load(open(os.path.join(deploy, "compose.yaml")))
services = compose["services"]
replicas = [n for n, s in services.items() if "--store-url" in s.get("command", [])]
check(len(replicas) >= 2, "compose: fewer than two softserve replicas on the shared store")
for n in replicas:
    check(any(v.endswith(":/models") for v in services[n]["volumes"]), "compose: %s has no model volume" % n)
    check(not any(":/var/lib/softserve" in v for v in services[n]["volumes"]), "compose: %s mounts a prompt volume" % n)
    check("postgres" in services[n].get("depends_on", {}), "compose: %s does not wait for PostgreSQL" % n)
check("postgres" in services, "compose: no PostgreSQL")
check(any(v.endswith(":/etc/nginx/nginx.conf:ro") and v.startswith("./nginx/nginx.conf") for v in services["nginx"]["volumes"]),
      "compose: nginx does not run deploy/nginx/nginx.conf")
nginx_conf = open(os.path.join(deploy, "nginx", "nginx.conf")).read()
for n in replicas:
    check("server %s:50051" % n in nginx_conf, "nginx.conf has no upstream for %s" % n)
check("grpc_pass grpc://softserve;" in nginx_conf, "nginx.conf does not grpc_pass to the replicas")
check("prometheus" in services, "compose: no Prometheus")
prom = yaml.safe_load(open(os.path.join(deploy, "prometheus.yml")))
check(sorted(prom["scrape_configs"][0]["static_configs"][0]["targets"]) == sorted(n + ":9090" for n in replicas),
      "Prometheus does not scrape every replica")
for f in ["softserve.json", "tenants.example.json"]:
    json.load(open(os.path.join(deploy, "config", f)))

# Where kubectl is installed, its own kustomize renderer must accept deploy/k8s and produce the
# same resources. (`kubectl apply --dry-run=client` needs API discovery from a server, so it
# cannot run without a cluster.)
kubectl = shutil.which("kubectl")
if kubectl:
    rendered = subprocess.run([kubectl, "kustomize", os.path.join(deploy, "k8s")], capture_output=True, text=True)
    check(rendered.returncode == 0, "kubectl kustomize deploy/k8s failed:\n" + rendered.stderr)
    if rendered.returncode == 0:
        rendered_kinds = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered.stdout) if d)
        check(rendered_kinds == sorted(docs), "kubectl kustomize rendered %s, the files hold %s" % (rendered_kinds, sorted(docs)))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("deploy manifests OK (%d YAML files%s)" % (len(yaml_files), ", kubectl kustomize" if kubectl else ", no kubectl here"))
