"""aad-pod-identity's own components, recognised by what they are wherever they run.

The AKS add-on labels NMI `component: nmi` in kube-system; the upstream manifests (`deploy/infra/*.yaml`) label it
`component: nmi` in `default`, the Helm chart `app.kubernetes.io/component: nmi` in the release's namespace, and a
team's own copy may carry neither. What does not change is the program: the image
(`mcr.microsoft.com/oss/azure/aad-pod-identity/nmi`, earlier `mcr.microsoft.com/k8s/aad-pod-identity/nmi`) and its
flags (`--operation-mode`, `--node` from the downward API). NMI needs the host network: it is the interceptor that
iptables sends IMDS traffic to, so its own hostNetwork is no bypass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NMI_LABELS = ({"component": "nmi"}, {"app.kubernetes.io/component": "nmi"})
MIC_LABELS = ({"component": "mic"}, {"app.kubernetes.io/component": "mic"})
# `<registry>/.../aad-pod-identity/nmi:<tag>` (the image's last path segment names the component)
_IMAGE = re.compile(r"(?:^|/)aad-pod-identity/(nmi|mic)(?::|@|$)")
_POD_SPEC_PATHS = (("spec",), ("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))


def _labels_match(labels: Mapping[str, str] | None, selector: Mapping[str, str]) -> bool:
    return bool(labels) and all((labels or {}).get(k) == v for k, v in selector.items())


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a Pod or of a workload's pod template."""
    path = {"Pod": _POD_SPEC_PATHS[0], "CronJob": _POD_SPEC_PATHS[2]}.get(str(obj.get("kind")), _POD_SPEC_PATHS[1])
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def component(obj: Mapping[str, Any]) -> str | None:
    """`nmi`, `mic` or None for a Pod, a DaemonSet, a Deployment (...) of aad-pod-identity."""
    for container in pod_spec(obj).get("containers") or []:
        match = _IMAGE.search(str((container or {}).get("image") or ""))
        if match:
            return match.group(1)
    labels = (obj.get("metadata") or {}).get("labels")
    if any(_labels_match(labels, s) for s in NMI_LABELS):
        return "nmi"
    if any(_labels_match(labels, s) for s in MIC_LABELS):
        return "mic"
    return None


def runs_nmi_image(obj: Mapping[str, Any]) -> bool:
    """NMI by its program alone: what exempts a pod from the hostNetwork rule must not be a label anyone can set."""
    return any((m := _IMAGE.search(str((c or {}).get("image") or ""))) and m.group(1) == "nmi"
               for c in pod_spec(obj).get("containers") or [])


def is_nmi(obj: Mapping[str, Any]) -> bool:
    return component(obj) == "nmi"


def is_mic(obj: Mapping[str, Any]) -> bool:
    return component(obj) == "mic"
