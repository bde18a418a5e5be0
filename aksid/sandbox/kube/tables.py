"""Server-side Table printing: the columns `kubectl get` shows, per built-in kind or a CRD's printer columns."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aksid.sandbox.kube.jsonpath import dig, jsonpath_values
from aksid.sandbox.kube.resources import CRD_KEY, KubeObject, Resource


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, which kubectl's AGE column uses."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _since(value: Any, now: dt.datetime) -> str:
    when = _parse_time(value)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


Cell = Callable[[KubeObject, dt.datetime], Any]


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> KubeObject:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


_NAME_COLUMN = Column("Name", lambda o, _: o["metadata"]["name"], format="name",
                      description="Name must be unique within a namespace.")
_AGE_COLUMN = Column("Age", lambda o, now: _since(o["metadata"].get("creationTimestamp"), now),
                     description="CreationTimestamp is a timestamp representing the server time when this object "
                                 "was created.")


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


def _pod_ready(pod: KubeObject, _: dt.datetime) -> str:
    statuses = dig(pod, "status", "containerStatuses", default=[])
    total = len(dig(pod, "spec", "containers", default=[]))
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _container_reason(status: KubeObject) -> str | None:
    state = status.get("state") or {}
    if dig(state, "waiting", "reason"):
        return state["waiting"]["reason"]
    terminated = state.get("terminated")
    if terminated:
        if terminated.get("reason"):
            return terminated["reason"]
        if terminated.get("signal"):
            return f"Signal:{terminated['signal']}"
        return f"ExitCode:{terminated.get('exitCode', 0)}"
    return None


def _init_reason(pod: KubeObject) -> str | None:
    statuses = dig(pod, "status", "initContainerStatuses", default=[])
    for index, status in enumerate(statuses):
        terminated = dig(status, "state", "terminated")
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        reason = _container_reason(status)
        if reason and reason != "PodInitializing":
            return f"Init:{reason}"
        return f"Init:{index}/{len(dig(pod, 'spec', 'initContainers', default=[]))}"
    return None


def _pod_status(pod: KubeObject, _: dt.datetime) -> str:
    """A condensed version of kubectl's pod STATUS: init progress, container reasons, Terminating."""
    reason = dig(pod, "status", "reason") or dig(pod, "status", "phase") or "Unknown"
    init = _init_reason(pod)
    if init:
        reason = init
    else:
        has_running = False
        for status in reversed(dig(pod, "status", "containerStatuses", default=[])):
            container_reason = _container_reason(status)
            if container_reason:
                reason = container_reason
            elif dig(status, "state", "running") and status.get("ready"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if dig(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if dig(pod, "status", "reason") == "NodeLost" else "Terminating"
    return reason


def _pod_restarts(pod: KubeObject, now: dt.datetime) -> str:
    statuses = dig(pod, "status", "containerStatuses", default=[])
    init_statuses = dig(pod, "status", "initContainerStatuses", default=[])
    restarts = sum(int(s.get("restartCount") or 0) for s in [*init_statuses, *statuses])
    finished = [t for s in statuses if (t := _parse_time(dig(s, "lastState", "terminated", "finishedAt")))]
    if restarts and finished:
        return f"{restarts} ({human_duration((now - max(finished)).total_seconds())} ago)"
    return str(restarts)


def _node_status(node: KubeObject, _: dt.datetime) -> str:
    ready = next((c.get("status") for c in dig(node, "status", "conditions", default=[]) if c.get("type") == "Ready"),
                 None)
    status = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    return f"{status},SchedulingDisabled" if dig(node, "spec", "unschedulable") else status


def _node_roles(node: KubeObject, _: dt.datetime) -> str:
    labels = dig(node, "metadata", "labels", default={})
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_address(kind: str) -> Cell:
    def cell(node: KubeObject, _: dt.datetime) -> str:
        addresses = [a.get("address") for a in dig(node, "status", "addresses", default=[]) if a.get("type") == kind]
        return _none(",".join(a for a in addresses if a))

    return cell


def _load_balancer_addresses(obj: KubeObject) -> list[str]:
    return [i.get("ip") or i.get("hostname") or "" for i in dig(obj, "status", "loadBalancer", "ingress", default=[])]


def _service_external_ip(service: KubeObject, _: dt.datetime) -> str:
    external = dig(service, "spec", "externalIPs", default=[])
    if dig(service, "spec", "type") == "LoadBalancer":
        return ",".join(_load_balancer_addresses(service) + external) or "<pending>"
    if dig(service, "spec", "type") == "ExternalName":
        return dig(service, "spec", "externalName", default="<none>")
    return ",".join(external) or "<none>"


def _service_ports(service: KubeObject, _: dt.datetime) -> str:
    ports = []
    for port in dig(service, "spec", "ports", default=[]):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node_port}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _selector_text(selector: dict[str, Any] | None) -> str:
    """A label selector (LabelSelector or plain map) as kubectl prints it."""
    if not selector:
        return "<none>"
    structured = "matchLabels" in selector or "matchExpressions" in selector
    labels = (selector.get("matchLabels") or {}) if structured else selector
    expressions = (selector.get("matchExpressions") or []) if structured else []
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str)]
    for expression in expressions:
        values = ",".join(expression.get("values") or [])
        parts.append(f"{expression.get('key')} {str(expression.get('operator', '')).lower()} ({values})")
    return ",".join(parts) or "<none>"


def _template_containers(attribute: str) -> Cell:
    def cell(obj: KubeObject, _: dt.datetime) -> str:
        containers = dig(obj, "spec", "template", "spec", "containers", default=[])
        return ",".join(str(c.get(attribute, "")) for c in containers)

    return cell


def _int_at(*keys: str, default: int = 0) -> Cell:
    return lambda obj, _: int(dig(obj, *keys, default=default) or 0)


def _ratio(ready: tuple[str, ...], desired: tuple[str, ...]) -> Cell:
    return lambda obj, _: f"{dig(obj, *ready, default=0) or 0}/{dig(obj, *desired, default=1)}"


def _ingress_hosts(ingress: KubeObject, _: dt.datetime) -> str:
    hosts = [r.get("host") for r in dig(ingress, "spec", "rules", default=[]) if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_ports(ingress: KubeObject, _: dt.datetime) -> str:
    return "80, 443" if dig(ingress, "spec", "tls") else "80"


def _created_at(obj: KubeObject, _: dt.datetime) -> str:
    return str(obj["metadata"].get("creationTimestamp", ""))


_WIDE_TEMPLATE = (
    Column("Containers", _template_containers("name"), priority=1),
    Column("Images", _template_containers("image"), priority=1),
    Column("Selector", lambda o, _: _selector_text(dig(o, "spec", "selector")), priority=1),
)
_INT = "integer"
BUILTIN_COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "Pod"): (
        _NAME_COLUMN, Column("Ready", _pod_ready), Column("Status", _pod_status), Column("Restarts", _pod_restarts),
        _AGE_COLUMN,
        Column("IP", lambda o, _: _none(dig(o, "status", "podIP")), priority=1),
        Column("Node", lambda o, _: _none(dig(o, "spec", "nodeName")), priority=1),
        Column("Nominated Node", lambda o, _: _none(dig(o, "status", "nominatedNodeName")), priority=1),
        Column("Readiness Gates", lambda o, _: _none(len(dig(o, "spec", "readinessGates", default=[])) or None),
               priority=1),
    ),
    ("", "Node"): (
        _NAME_COLUMN, Column("Status", _node_status), Column("Roles", _node_roles), _AGE_COLUMN,
        Column("Version", lambda o, _: dig(o, "status", "nodeInfo", "kubeletVersion", default="")),
        Column("Internal-IP", _node_address("InternalIP"), priority=1),
        Column("External-IP", _node_address("ExternalIP"), priority=1),
        Column("OS-Image", lambda o, _: dig(o, "status", "nodeInfo", "osImage", default=""), priority=1),
        Column("Kernel-Version", lambda o, _: dig(o, "status", "nodeInfo", "kernelVersion", default=""), priority=1),
        Column("Container-Runtime", lambda o, _: dig(o, "status", "nodeInfo", "containerRuntimeVersion", default=""),
               priority=1),
    ),
    ("", "Namespace"): (_NAME_COLUMN, Column("Status", lambda o, _: dig(o, "status", "phase", default="")),
                        _AGE_COLUMN),
    ("", "Service"): (
        _NAME_COLUMN, Column("Type", lambda o, _: dig(o, "spec", "type", default="ClusterIP")),
        Column("Cluster-IP", lambda o, _: _none(dig(o, "spec", "clusterIP"))),
        Column("External-IP", _service_external_ip), Column("Port(s)", _service_ports), _AGE_COLUMN,
        Column("Selector", lambda o, _: _selector_text(dig(o, "spec", "selector")), priority=1),
    ),
    ("", "ConfigMap"): (_NAME_COLUMN, Column("Data", lambda o, _: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                             type=_INT), _AGE_COLUMN),
    ("", "Secret"): (_NAME_COLUMN, Column("Type", lambda o, _: o.get("type", "Opaque")),
                     Column("Data", lambda o, _: len(o.get("data") or {}), type=_INT), _AGE_COLUMN),
    ("", "ServiceAccount"): (_NAME_COLUMN, Column("Secrets", lambda o, _: len(o.get("secrets") or []), type=_INT),
                             _AGE_COLUMN),
    ("apps", "Deployment"): (
        _NAME_COLUMN, Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
        Column("Up-to-date", _int_at("status", "updatedReplicas"), type=_INT),
        Column("Available", _int_at("status", "availableReplicas"), type=_INT), _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "DaemonSet"): (
        _NAME_COLUMN, Column("Desired", _int_at("status", "desiredNumberScheduled"), type=_INT),
        Column("Current", _int_at("status", "currentNumberScheduled"), type=_INT),
        Column("Ready", _int_at("status", "numberReady"), type=_INT),
        Column("Up-to-date", _int_at("status", "updatedNumberScheduled"), type=_INT),
        Column("Available", _int_at("status", "numberAvailable"), type=_INT),
        Column("Node Selector", lambda o, _: _selector_text(dig(o, "spec", "template", "spec", "nodeSelector"))),
        _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "ReplicaSet"): (
        _NAME_COLUMN, Column("Desired", _int_at("spec", "replicas", default=1), type=_INT),
        Column("Current", _int_at("status", "replicas"), type=_INT),
        Column("Ready", _int_at("status", "readyReplicas"), type=_INT), _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "StatefulSet"): (_NAME_COLUMN, Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
                              _AGE_COLUMN, *_WIDE_TEMPLATE[:2]),
    ("networking.k8s.io", "Ingress"): (
        _NAME_COLUMN, Column("Class", lambda o, _: _none(dig(o, "spec", "ingressClassName"))),
        Column("Hosts", _ingress_hosts),
        Column("Address", lambda o, _: ",".join(_load_balancer_addresses(o))), Column("Ports", _ingress_ports),
        _AGE_COLUMN,
    ),
    ("networking.k8s.io", "IngressClass"): (
        _NAME_COLUMN, Column("Controller", lambda o, _: dig(o, "spec", "controller", default="")), _AGE_COLUMN,
    ),
    CRD_KEY: (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
    ("rbac.authorization.k8s.io", "ClusterRole"): (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
    ("rbac.authorization.k8s.io", "Role"): (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
}


def _printer_cell(column: dict[str, Any]) -> Cell:
    def cell(obj: KubeObject, now: dt.datetime) -> Any:
        values = jsonpath_values(obj, str(column.get("jsonPath", "")))
        if not values:
            return None
        value = values[0] if len(values) == 1 else ",".join(json.dumps(v) if isinstance(v, dict | list) else str(v)
                                                              for v in values)
        if column.get("type") == "date":
            return _since(value, now)
        return json.dumps(value) if isinstance(value, dict | list) else value

    return cell


def columns_for(resource: Resource) -> tuple[Column, ...]:
    builtin = BUILTIN_COLUMNS.get((resource.group, resource.kind))
    if builtin:
        return builtin
    if not resource.printer_columns:
        return (_NAME_COLUMN, _AGE_COLUMN)
    printer = tuple(
        Column(str(c.get("name", "")), _printer_cell(c), type=str(c.get("type", "string")), priority=int(c.get("priority", 0)),
               format=str(c.get("format", "")), description=str(c.get("description", "")))
        for c in resource.printer_columns
    )
    return (_NAME_COLUMN, *printer)


def partial_metadata(obj: KubeObject, version: str = "v1") -> KubeObject:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": copy.deepcopy(obj["metadata"])}


def table_document(resource: Resource, objects: list[KubeObject], list_meta: KubeObject, version: str,
                   include_object: str) -> KubeObject:
    now = dt.datetime.now(dt.UTC)
    columns = columns_for(resource)
    rows = []
    for obj in objects:
        row: KubeObject = {"cells": [column.cell(obj, now) for column in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, version)
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta,
            "columnDefinitions": [column.definition() for column in columns], "rows": rows}
