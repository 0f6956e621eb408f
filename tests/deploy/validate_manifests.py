"""Offline validation of deploy/: yamllint on every YAML file, then structural checks of the
Kubernetes manifests and the compose file against what the server needs (no cluster, no
container engine): native gRPC probes on the gRPC port (readiness "", liveness "liveness"), a
termination grace period longer than the server's drain, the tenant Secret mounted where the
config points, the prompt store on a PersistentVolumeClaim, a GPU request, non-root, and a JSON
config the server's option names accept. Exit 0 when everything holds."""
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

docs = {}
for f in yaml_files:
    if os.path.basename(os.path.dirname(f)) == "k8s" and not f.endswith("kustomization.yaml"):
        for d in yaml.safe_load_all(open(f)):
            check("apiVersion" in d and "kind" in d and "metadata" in d, f + ": missing apiVersion/kind/metadata")
            docs[d["kind"]] = d

for kind in ["Deployment", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"]:
    check(kind in docs, "no " + kind)
dep = docs["Deployment"]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(c["readinessProbe"]["grpc"]["port"] == ports["grpc"], "readiness probe is not a gRPC probe on the gRPC port")
check(c["readinessProbe"]["grpc"].get("service", "") == "", "readiness must check service \"\"")
check(c["livenessProbe"]["grpc"]["service"] == "liveness", "liveness must check service \"liveness\"")
config = json.loads(docs["ConfigMap"]["data"]["softserve.json"])
# SIGTERM to exit: the drain notice (NOT_SERVING while still listening; the server's default is
# 5 s), the drain, then gRPC's 1 s shutdown.
stop_seconds = config.get("drain_notice_seconds", 5) + config["drain_seconds"] + 1
check(pod["terminationGracePeriodSeconds"] > stop_seconds,
      "terminationGracePeriodSeconds must exceed drain_notice_seconds + drain_seconds + the 1 s gRPC shutdown")
check(c["resources"]["requests"].get("nvidia.com/gpu") == 1, "no GPU request")
check(pod["securityContext"]["runAsNonRoot"] is True, "pod may run as root")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
check(vols[[n for n in mounts if mounts[n] == "/var/lib/softserve"][0]].get("persistentVolumeClaim", {}).get("claimName")
      == docs["PersistentVolumeClaim"]["metadata"]["name"], "prompt store is not on the PVC")
tenant_dir = os.path.dirname(config["tenants_file"])
tenant_vol = [n for n in mounts if mounts[n] == tenant_dir]
check(tenant_vol and vols[tenant_vol[0]].get("secret", {}).get("secretName") == docs["Secret"]["metadata"]["name"],
      "tenants_file is not read from the Secret")
tenants = json.loads(docs["Secret"]["stringData"]["tenants.json"])
# No working secret is shipped: every digest is a placeholder the server refuses to start with.
check(all("REPLACE" in t["api_key_sha256"] for t in tenants["tenants"]), "the Secret ships a usable key digest")
example = json.load(open(os.path.join(deploy, "config", "tenants.example.json")))
check(all("REPLACE" in t["api_key_sha256"] for t in example["tenants"]), "tenants.example.json ships a usable key digest")
svc = docs["Service"]
check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "Service selector does not match the pods")
check(dep["spec"]["strategy"]["type"] == "Recreate", "a RWO prompt volume needs the Recreate strategy")

compose = yaml.safe_load(open(os.path.join(deploy, "compose.yaml")))
s = compose["services"]["softserve"]
check(any(v.endswith(":/var/lib/softserve") for v in s["volumes"]), "compose: no prompt-store volume")
check(any(v.endswith(":/models") for v in s["volumes"]), "compose: no model volume")
check("prometheus" in compose["services"], "compose: no Prometheus")
prom = yaml.safe_load(open(os.path.join(deploy, "prometheus.yml")))
check(prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["softserve:9090"], "Prometheus does not scrape softserve")
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
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d)
        check(kinds == sorted(docs), "kubectl kustomize rendered %s, the files hold %s" % (kinds, sorted(docs)))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("deploy manifests OK (%d YAML files%s)" % (len(yaml_files), ", kubectl kustomize" if kubectl else ", no kubectl here"))
