"""A fake Kubernetes API server over a scenario's objects, faithful enough for kubectl and the Python client.

Serves discovery (legacy and aggregated), GET and LIST (label/field selectors, limit/continue),
server-side Table printing for kubectl, `Status` errors shaped like kube-apiserver's, create and delete
(provision mode), update and patch (kubectl apply, edit, label, annotate, patch, replace), and faults
injected by the scenario. Custom resources exist only while
their CustomResourceDefinition is in the store, exactly as on a cluster.

There are no controllers: what a scenario (or a POST) says about an object's status stays as written.

This module is the public face; the code lives in aksid.sandbox.kube, one module per job.
"""

from aksid.sandbox.kube.discovery import SERVER_VERSION
from aksid.sandbox.kube.errors import ApiError, status_document
from aksid.sandbox.kube.faults import Fault
from aksid.sandbox.kube.handler import KubeRequestHandler, make_kube_handler, route_resource
from aksid.sandbox.kube.objects import FIXED_CREATION_TIMESTAMP, object_key, prepare_object
from aksid.sandbox.kube.resources import BUILTIN_RESOURCES, Catalog, KubeObject, ObjectKey, Resource, crd_resources
from aksid.sandbox.kube.selectors import SelectorError
from aksid.sandbox.kube.store import KubeStore

__all__ = [
    "BUILTIN_RESOURCES",
    "FIXED_CREATION_TIMESTAMP",
    "SERVER_VERSION",
    "ApiError",
    "Catalog",
    "Fault",
    "KubeObject",
    "KubeRequestHandler",
    "KubeStore",
    "ObjectKey",
    "Resource",
    "SelectorError",
    "crd_resources",
    "make_kube_handler",
    "object_key",
    "prepare_object",
    "route_resource",
    "status_document",
]
