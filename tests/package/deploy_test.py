"""The DaemonSet grants what the systemd unit grants and keeps the least-privilege posture.

usage: deploy_test.py SOURCE_DIR
"""
import re
import sys
from pathlib import Path

import yaml


def unit_capabilities(unit: Path) -> set[str]:
    text = unit.read_text()
    ambient = re.search(r"^AmbientCapabilities=(.*)$", text, re.M)
    bounding = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert ambient and bounding, f"{unit}: no AmbientCapabilities or CapabilityBoundingSet"
    assert ambient[1].split() == bounding[1].split(), "unit: ambient and bounding sets differ"
    return {cap.removeprefix("CAP_") for cap in ambient[1].split()}


def main() -> int:
    source = Path(sys.argv[1])
    manifest = source / "deploy/kubernetes/daemonset.yaml"
    docs = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    daemonsets = [doc for doc in docs if doc.get("kind") == "DaemonSet"]
    assert len(daemonsets) == 1, f"{manifest}: expected one DaemonSet"
    ds = daemonsets[0]
    assert ds["apiVersion"] == "apps/v1"
    template = ds["spec"]["template"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod.get("hostPID") is True, "hostPID is needed for /proc of every process"
    assert not pod.get("hostNetwork"), "hostNetwork is not needed"
    assert pod.get("automountServiceAccountToken") is False

    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc.get("privileged") is False
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    added = set(sc["capabilities"]["add"])
    wanted = unit_capabilities(source / "packaging/tcptrail.service")
    assert added == wanted, f"DaemonSet adds {sorted(added)}, the unit grants {sorted(wanted)}"

    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    for volume in pod.get("volumes", []):
        assert "hostPath" in volume, f"volume {volume['name']}: only hostPath volumes expected"
        assert mounts[volume["name"]].get("readOnly") is True, f"{volume['name']} not read-only"

    args = container["args"]
    # A pod's host name is the pod's name: records name the node through the downward API.
    env = {e["name"]: e for e in container.get("env", [])}
    field = env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    assert field == "spec.nodeName", "NODE_NAME must come from the pod's spec.nodeName"
    assert "--host" in args and args[args.index("--host") + 1] == "$(NODE_NAME)", \
        "records must carry the node's name (--host $(NODE_NAME)), not the pod's"
    metrics = args[args.index("--metrics") + 1]
    port = int(metrics.rsplit(":", 1)[1])
    (declared,) = [p for p in container["ports"] if p["name"] == "metrics"]
    annotations = template["metadata"]["annotations"]
    assert declared["containerPort"] == port, "metrics containerPort differs from --metrics"
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port, "scrape port differs from --metrics"
    assert annotations["prometheus.io/path"] == "/metrics"

    dockerfile = (source / "deploy/Dockerfile").read_text()
    assert re.search(r"^FROM debian:12", dockerfile, re.M), "the image is not Debian 12"
    assert container["image"].startswith("tcptrail:"), container["image"]
    print(f"deploy_test: {manifest.name}: capabilities {sorted(added)}, metrics port {port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
