"""Teardown registered before each create (Terratest's `defer Destroy()`), and a sweep by run label.

The provisioner never deletes what it did not create: every delete names an object it registered,
or one the sweep found carrying this run's label.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client as kclient
from kubernetes.client.exceptions import ApiException

from aksid.interrupts import note_interrupt
from aksid.provision.manifests import CREATED_ANNOTATION, RUN_LABEL


@dataclass(frozen=True)
class Created:
    kind: str  # Namespace, Pod, Deployment, Service, Ingress
    namespace: str | None
    name: str
    created: str | None = None  # the aksid.io/created annotation (ISO 8601), when listed

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.namespace + '/' if self.namespace else ''}{self.name}"


# What the provisioner creates, and how to list (by label) and delete each kind.
SWEPT_KINDS = ("Pod", "Deployment", "Service", "Ingress", "Namespace")


class KubeObjects:
    """The few kube calls the provisioner makes, one place, so their verbs are easy to audit."""

    def __init__(self, api: kclient.ApiClient) -> None:
        self.core = kclient.CoreV1Api(api)
        self.apps = kclient.AppsV1Api(api)
        self.net = kclient.NetworkingV1Api(api)

    def create(self, obj: dict[str, Any]) -> None:
        kind, ns = obj["kind"], obj["metadata"].get("namespace")
        creators: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self.core.create_namespace(obj),
            "Pod": lambda: self.core.create_namespaced_pod(ns, obj),
            "Service": lambda: self.core.create_namespaced_service(ns, obj),
            "Deployment": lambda: self.apps.create_namespaced_deployment(ns, obj),
            "Ingress": lambda: self.net.create_namespaced_ingress(ns, obj),
        }
        creators[kind]()

    def delete(self, created: Created) -> None:
        """Delete one object; an object already gone is fine (idempotent, so the sweep may repeat it)."""
        ns, name = created.namespace, created.name
        deleters: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self.core.delete_namespace(name),
            "Pod": lambda: self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0),
            "Service": lambda: self.core.delete_namespaced_service(name, ns),
            "Deployment": lambda: self.apps.delete_namespaced_deployment(name, ns),
            "Ingress": lambda: self.net.delete_namespaced_ingress(name, ns),
        }
        try:
            deleters[created.kind]()
        except ApiException as exc:
            if exc.status != 404:
                raise

    def labelled(self, selector: str) -> list[Created]:
        """Every object of the swept kinds carrying `selector` (e.g. `aksid.io/run=ID`), cluster-wide."""
        listers: dict[str, Callable[[], Any]] = {
            "Pod": lambda: self.core.list_pod_for_all_namespaces(label_selector=selector),
            "Deployment": lambda: self.apps.list_deployment_for_all_namespaces(label_selector=selector),
            "Service": lambda: self.core.list_service_for_all_namespaces(label_selector=selector),
            "Ingress": lambda: self.net.list_ingress_for_all_namespaces(label_selector=selector),
            "Namespace": lambda: self.core.list_namespace(label_selector=selector),
        }
        found = []
        for kind in SWEPT_KINDS:
            for item in listers[kind]().items:
                stamp = (item.metadata.annotations or {}).get(CREATED_ANNOTATION)
                found.append(Created(kind, item.metadata.namespace, item.metadata.name, stamp))
        return found


class Teardown:
    """Objects to delete, newest first; `close()` deletes them, then sweeps whatever still carries the run label."""

    def __init__(self, objects: KubeObjects, run_id: str, progress: Callable[[str], None]) -> None:
        self.objects = objects
        self.run_id = run_id
        self.progress = progress
        self.registered: list[Created] = []
        self.closed = False
        self.problems: list[str] = []

    def register(self, obj: dict[str, Any]) -> Created:
        """Before the create: an interrupt between the two still finds it in the list (a 404 then is fine)."""
        created = Created(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.registered.append(created)
        return created

    def create(self, obj: dict[str, Any]) -> Created:
        created = self.register(obj)
        self.objects.create(obj)
        return created

    def close(self) -> None:
        """Delete everything registered, then every object left with this run's label.

        Never raises for a failed delete (it is recorded); an interrupt that arrived meanwhile is raised after."""
        if self.closed:
            return
        self.closed = True
        with _shielded():
            for created in reversed(self.registered):
                self._delete(created)
            for created in sweep(self.objects, self.run_id, self.progress):
                self.problems.append(f"could not delete {created}")

    def _delete(self, created: Created) -> None:
        try:
            self.objects.delete(created)
            self.progress(f"teardown: deleted {created}")
        except Exception as exc:  # noqa: BLE001 - keep deleting the rest; the sweep tries again
            self.problems.append(f"deleting {created}: {exc}")


def sweep(objects: KubeObjects, run_id: str | None, progress: Callable[[str], None],
          keep: Callable[[Created], bool] = lambda _created: False) -> list[Created]:
    """Delete every object carrying the run label (one run's, or any run's, but those `keep` spares);
    return what could not be deleted."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    failed = []
    for created in objects.labelled(selector):
        if keep(created):
            continue
        try:
            objects.delete(created)
            progress(f"sweep: deleted {created}")
        except Exception:  # noqa: BLE001 - report it; an operator sweeps again with `aksid sweep`
            failed.append(created)
    return failed


@contextmanager
def _shielded() -> Iterator[None]:
    """A second Ctrl-C or SIGTERM must not cut the teardown short: hold them until it is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    def hold(number: int, _frame: object) -> None:
        note_interrupt(number)
        held.append(number)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            raise KeyboardInterrupt
