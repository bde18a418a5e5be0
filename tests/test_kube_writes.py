"""PUT and PATCH on the sandbox's fake kube API, as kube-apiserver serves them and kubectl sends them.

kubectl apply (client- and server-side), label, annotate, edit, patch and replace change what the next
`aksid run` (attach mode) sees; conflicts are 409 with kube-apiserver's `Status`; the patch formats (merge,
JSON patch, strategic merge) are proven on their own. kubectl is required: without it these tests fail.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid.sandbox.kube.patch import PatchError, json_patch, merge_key, merge_patch, strategic_merge_patch
from aksid.sandbox.runtime import Sandbox

from .harness import run_suites

KUBECTL = shutil.which("kubectl")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HOST_NETWORK_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "node-debugger", "namespace": "default", "labels": {"run": "node-debugger"}},
    "spec": {"hostNetwork": True, "containers": [{"name": "shell", "image": "mcr.microsoft.com/cbl-mariner/busybox:2.0",
                                                  "command": ["sleep", "infinity"]}]},
}


# --- helpers ------------------------------------------------------------------------------------------


def kubectl(sandbox: Sandbox, tmp_path: Path, *args: str, editor: Path | None = None,
            kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl against the sandbox, with no user kubeconfig or cache; a failure (not a skip) without kubectl."""
    if KUBECTL is None:
        pytest.fail("kubectl is not installed: `make debs` installs it (Debian package kubernetes-client)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    if editor is not None:
        env["KUBE_EDITOR"] = str(editor)
    cache = tempfile.mkdtemp(prefix="kubectl-cache-", dir=tmp_path)
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig or sandbox.kubeconfig), "--cache-dir", cache, *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def get(sandbox: Sandbox, tmp_path: Path, *args: str) -> dict[str, Any]:
    return json.loads(ok(kubectl(sandbox, tmp_path, "get", *args, "-o", "json")))


def request(sandbox: Sandbox, method: str, path: str, body: Any = None, content_type: str = "application/json",
            kubeconfig: str = "kubeconfig") -> tuple[int, dict[str, Any]]:
    """One HTTPS request to the sandbox's kube API, as the kubeconfig's user."""
    config = yaml.safe_load((sandbox.state_dir / kubeconfig).read_text(encoding="utf-8"))
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers={"Authorization": f"Bearer {user['token']}",
                                                            "Content-Type": content_type, "Accept": "application/json"})
    response = connection.getresponse()
    document = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, document


def writes_since(sandbox: Sandbox, start: int) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests()[start:] if r["method"] in WRITES]


def outcome(run: Any, check_id: str) -> set[str]:
    return {c["outcome"] for c in run.results["checks"] if c["id"] == check_id}


@pytest.fixture(scope="module")
def pod_in_hello(healthy: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> str:
    pods = get(healthy, tmp_path_factory.mktemp("kubectl"), "pods", "-n", "hello")["items"]
    return sorted(p["metadata"]["name"] for p in pods)[0]


# --- kubectl against the sandbox, seen by the next aksid run -------------------------------------------


def test_kubectl_is_installed() -> None:
    assert KUBECTL is not None, "kubectl is not installed: `make debs` installs it (Debian package kubernetes-client)"
    version = subprocess.run([KUBECTL, "version", "--client"], capture_output=True, text=True, timeout=30, check=False)
    assert version.returncode == 0 and "v1." in version.stdout, version.stdout + version.stderr


def test_kubectl_writes_change_what_the_next_run_sees(healthy: Sandbox, pod_in_hello: str, tmp_path: Path) -> None:
    start = len(healthy.requests())
    # label: a pod outside kube-addons now carries external-dns's binding selector (BIND-003)
    labelled = kubectl(healthy, tmp_path, "label", "pod", "-n", "hello", pod_in_hello, "aadpodidbinding=external-dns")
    assert f"pod/{pod_in_hello} labeled" in ok(labelled)
    # apply -f (client-side): created, then configured by a strategic merge patch (BIND-004: hostNetwork)
    manifest = tmp_path / "debugger.yaml"
    manifest.write_text(yaml.safe_dump(HOST_NETWORK_POD), encoding="utf-8")
    assert "pod/node-debugger created" in ok(kubectl(healthy, tmp_path, "apply", "-f", str(manifest)))
    changed = json.loads(json.dumps(HOST_NETWORK_POD))
    changed["metadata"]["labels"]["team"] = "sre"
    manifest.write_text(yaml.safe_dump(changed), encoding="utf-8")
    assert "pod/node-debugger configured" in ok(kubectl(healthy, tmp_path, "apply", "-f", str(manifest)))
    # annotate
    ok(kubectl(healthy, tmp_path, "annotate", "namespace", "hello", "owner=team-web"))
    assert {r["method"] for r in writes_since(healthy, start)} == {"POST", "PATCH"}

    before_run = len(healthy.requests())
    run = run_suites("--aksid-profile", str(healthy.profile), reports=tmp_path / "after-writes")
    assert writes_since(healthy, before_run) == [], "attach mode must never write"
    assert "failed" in outcome(run, "BIND-003"), run.stdout
    assert "failed" in outcome(run, "BIND-004"), run.stdout
    snapshot = json.loads((tmp_path / "after-writes" / "snapshot.json").read_text(encoding="utf-8"))
    assert json.dumps(snapshot["kube"]).count('"owner": "team-web"') == 1
    assert '"team": "sre"' in json.dumps(snapshot["kube"]["v1/Pod"])

    # edit (KUBE_EDITOR: a script) takes the label off again; a pod's hostNetwork cannot be patched (422)...
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i '/aadpodidbinding/d' \"$1\"\n", encoding="utf-8")
    editor.chmod(0o755)
    assert f"pod/{pod_in_hello} edited" in ok(kubectl(healthy, tmp_path, "edit", "pod", "-n", "hello", pod_in_hello,
                                                      editor=editor))
    refused = kubectl(healthy, tmp_path, "patch", "pod", "-n", "default", "node-debugger", "-p",
                      '{"spec":{"hostNetwork":false}}')
    assert refused.returncode == 1 and "pod updates may not change fields other than" in refused.stderr
    # ... so the pod is replaced by one without it
    changed["spec"]["hostNetwork"] = False
    manifest.write_text(yaml.safe_dump(changed), encoding="utf-8")
    assert "pod/node-debugger replaced" in ok(kubectl(healthy, tmp_path, "replace", "--force", "-f", str(manifest)))
    run = run_suites("--aksid-profile", str(healthy.profile), reports=tmp_path / "after-edit")
    assert outcome(run, "BIND-003") == {"passed"} and outcome(run, "BIND-004") == {"passed"}, run.stdout
    ok(kubectl(healthy, tmp_path, "delete", "-f", str(manifest)))


def test_kubectl_patch_replace_and_server_side_apply(healthy: Sandbox, tmp_path: Path) -> None:
    deployment = get(healthy, tmp_path, "deployment", "-n", "hello", "hello-kubernetes")
    generation = deployment["metadata"]["generation"]
    name = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    # strategic merge (kubectl patch's default): the container merges by name, its env by name
    ok(kubectl(healthy, tmp_path, "patch", "deployment", "-n", "hello", "hello-kubernetes", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": name, "env": [{"name": "GREETING", "value": "hi"}]}]}}}})))
    ok(kubectl(healthy, tmp_path, "patch", "deployment", "-n", "hello", "hello-kubernetes", "--type", "merge",
               "-p", '{"metadata":{"labels":{"tier":"web"}}}'))
    operations = [{"op": "test", "path": "/metadata/labels/tier", "value": "web"},
                  {"op": "replace", "path": "/spec/replicas", "value": deployment["spec"]["replicas"] + 1}]
    ok(kubectl(healthy, tmp_path, "patch", "deployment", "-n", "hello", "hello-kubernetes", "--type", "json",
               "-p", json.dumps(operations)))
    failed_test = kubectl(healthy, tmp_path, "patch", "deployment", "-n", "hello", "hello-kubernetes", "--type", "json",
                          "-p", '[{"op":"test","path":"/spec/replicas","value":7}]')
    assert failed_test.returncode == 1 and "testing value /spec/replicas failed" in failed_test.stderr
    patched = get(healthy, tmp_path, "deployment", "-n", "hello", "hello-kubernetes")
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert len(containers) == len(deployment["spec"]["template"]["spec"]["containers"])
    assert {"name": "GREETING", "value": "hi"} in containers[0]["env"]
    assert containers[0]["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert patched["metadata"]["labels"]["tier"] == "web" and patched["spec"]["replicas"] == deployment["spec"]["replicas"] + 1
    assert patched["metadata"]["generation"] == generation + 2  # the env and the replicas; not the label
    assert patched["status"] == deployment["status"]  # the object's writes leave the status alone

    # replace (PUT) of what was read; the label is gone afterwards
    del patched["metadata"]["labels"]["tier"]
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(patched), encoding="utf-8")
    assert "replaced" in ok(kubectl(healthy, tmp_path, "replace", "-f", str(manifest)))
    assert "tier" not in get(healthy, tmp_path, "deployment", "-n", "hello", "hello-kubernetes")["metadata"]["labels"]

    # server-side apply: creates, then merges into the live object
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "hello"},
                  "data": {"a": "1"}}
    applied = tmp_path / "ssa.yaml"
    applied.write_text(yaml.safe_dump(config_map), encoding="utf-8")
    assert "serverside-applied" in ok(kubectl(healthy, tmp_path, "apply", "--server-side", "-f", str(applied)))
    config_map["data"] = {"b": "2"}
    applied.write_text(yaml.safe_dump(config_map), encoding="utf-8")
    ok(kubectl(healthy, tmp_path, "apply", "--server-side", "-f", str(applied)))
    assert get(healthy, tmp_path, "configmap", "-n", "hello", "ssa")["data"] == {"a": "1", "b": "2"}
    ok(kubectl(healthy, tmp_path, "delete", "configmap", "-n", "hello", "ssa"))


def test_custom_resources_take_merge_patches_not_strategic_ones(healthy: Sandbox, tmp_path: Path) -> None:
    identity = get(healthy, tmp_path, "azureidentities", "-n", "kube-addons")["items"][0]
    name = identity["metadata"]["name"]
    refused = kubectl(healthy, tmp_path, "patch", "azureidentity", "-n", "kube-addons", name, "-p",
                      '{"metadata":{"labels":{"x":"y"}}}')  # kubectl patch defaults to strategic merge
    assert refused.returncode == 1, refused.stderr  # 415 (kubectl 1.32 names the patch type, 1.20 the reason)
    assert ("application/strategic-merge-patch+json is not supported" in refused.stderr
            or "(UnsupportedMediaType)" in refused.stderr), refused.stderr
    assert ("accepted media types include: application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml") in refused.stderr
    ok(kubectl(healthy, tmp_path, "label", "azureidentity", "-n", "kube-addons", name, "reviewed=yes"))
    # apply -f of a custom resource: kubectl sends a JSON merge patch (no compiled-in type to merge by)
    live = get(healthy, tmp_path, "azureidentity", "-n", "kube-addons", name)
    manifest = {"apiVersion": live["apiVersion"], "kind": live["kind"],
                "metadata": {"name": name, "namespace": "kube-addons", "labels": live["metadata"]["labels"]},
                "spec": live["spec"]}
    path = tmp_path / "identity.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    ok(kubectl(healthy, tmp_path, "apply", "-f", str(path)))
    manifest["metadata"]["annotations"] = {"note": "applied"}
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    start = len(healthy.requests())
    assert "configured" in ok(kubectl(healthy, tmp_path, "apply", "-f", str(path)))
    assert [r["method"] for r in writes_since(healthy, start)] == ["PATCH"]
    after = get(healthy, tmp_path, "azureidentity", "-n", "kube-addons", name)
    assert after["metadata"]["annotations"]["note"] == "applied" and after["spec"] == live["spec"]
    assert after["metadata"]["labels"]["reviewed"] == "yes"


def test_kubectl_replace_of_a_stale_object_is_a_conflict(healthy: Sandbox, tmp_path: Path) -> None:
    manifest = tmp_path / "stale.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "stale", "namespace": "default"}, "data": {"a": "1"}}))
    ok(kubectl(healthy, tmp_path, "create", "-f", str(manifest)))
    stale = get(healthy, tmp_path, "configmap", "-n", "default", "stale")
    ok(kubectl(healthy, tmp_path, "annotate", "configmap", "-n", "default", "stale", "touched=yes"))
    manifest.write_text(json.dumps(stale), encoding="utf-8")
    result = kubectl(healthy, tmp_path, "replace", "-f", str(manifest))
    assert result.returncode == 1
    assert ('Operation cannot be fulfilled on configmaps "stale": the object has been modified; please apply your '
            "changes to the latest version and try again") in result.stderr
    ok(kubectl(healthy, tmp_path, "delete", "configmap", "-n", "default", "stale"))


# --- the API's answers, request by request ----------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(healthy: Sandbox) -> str:
    """A ConfigMap of this module's own, and its path."""
    status, created = request(healthy, "POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"a": "1"}},
        "data": {"k": "v"}})
    assert status == 201, created
    return "/api/v1/namespaces/default/configmaps/settings"


def test_put_with_a_stale_resource_version_is_409(healthy: Sandbox, settings: str) -> None:
    _, current = request(healthy, "GET", settings)
    status, replaced = request(healthy, "PUT", settings, {**current, "data": {"k": "w"}})
    assert status == 200 and replaced["data"] == {"k": "w"}
    assert int(replaced["metadata"]["resourceVersion"]) > int(current["metadata"]["resourceVersion"])
    assert replaced["metadata"]["uid"] == current["metadata"]["uid"]
    status, document = request(healthy, "PUT", settings, {**current, "data": {"k": "x"}})
    assert status == 409
    assert document == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Operation cannot be fulfilled on configmaps "settings": the object has been modified; please '
                   "apply your changes to the latest version and try again",
        "reason": "Conflict", "details": {"name": "settings", "kind": "configmaps"}, "code": 409,
    }
    # a patch carrying a resourceVersion conflicts the same way; without one it applies
    status, document = request(healthy, "PATCH", settings, {"metadata": {"resourceVersion": "1"}, "data": {"k": "y"}},
                               "application/merge-patch+json")
    assert status == 409 and document["reason"] == "Conflict"
    unconditional = {key: value for key, value in replaced.items() if key != "metadata"}
    unconditional["metadata"] = {"name": "settings", "labels": {"a": "1"}}
    status, document = request(healthy, "PUT", settings, unconditional)
    assert status == 200 and document["data"] == {"k": "w"}


def test_put_checks_the_name_and_the_object_must_exist(healthy: Sandbox, settings: str) -> None:
    _, current = request(healthy, "GET", settings)
    status, document = request(healthy, "PUT", settings, {**current, "metadata": {**current["metadata"], "name": "x"}})
    assert status == 400 and document["reason"] == "BadRequest"
    assert document["message"] == "the name of the object (x) does not match the name on the URL (settings)"
    other_namespace = {**current, "metadata": {**current["metadata"], "namespace": "kube-system"}}
    status, document = request(healthy, "PUT", settings, other_namespace)
    assert status == 400 and "does not match the namespace" in document["message"]
    status, document = request(healthy, "PUT", "/api/v1/namespaces/default/configmaps/absent",
                               {**current, "metadata": {"name": "absent"}})
    assert status == 404 and document["message"] == 'configmaps "absent" not found'
    status, document = request(healthy, "PATCH", "/api/v1/namespaces/default/configmaps/absent", {},
                               "application/merge-patch+json")
    assert status == 404 and document["reason"] == "NotFound"


def test_patch_formats_and_their_errors(healthy: Sandbox, settings: str) -> None:
    status, document = request(healthy, "PATCH", settings, [{"op": "add", "path": "/data/n", "value": "1"},
                                                            {"op": "copy", "from": "/data/n", "path": "/data/m"}],
                               "application/json-patch+json")
    assert status == 200 and document["data"]["n"] == document["data"]["m"] == "1"
    status, document = request(healthy, "PATCH", settings, [{"op": "test", "path": "/data/n", "value": "2"}],
                               "application/json-patch+json")
    assert status == 422 and document["reason"] == "Invalid"
    assert document["details"]["causes"][0]["message"] == "testing value /data/n failed: test failed"
    status, document = request(healthy, "PATCH", settings, {"data": {"n": None}}, "application/strategic-merge-patch+json")
    assert status == 200 and "n" not in document["data"]
    status, document = request(healthy, "PATCH", settings, b"{}", "text/plain")
    assert status == 415 and document["reason"] == "UnsupportedMediaType"
    status, document = request(healthy, "PATCH", settings, b"data: {k: v}", "application/apply-patch+yaml")
    assert status == 422 and "fieldManager: Required value" in document["message"]
    status, document = request(healthy, "PATCH", settings + "?fieldManager=test", b"metadata: {name: other}",
                               "application/apply-patch+yaml")
    assert status == 400


def test_status_subresource_and_generation(healthy: Sandbox, tmp_path: Path) -> None:
    path = "/apis/apps/v1/namespaces/kube-addons/deployments/external-dns"
    _, before = request(healthy, "GET", path)
    status, after = request(healthy, "PATCH", path + "/status", {"status": {"readyReplicas": 0},
                                                                 "spec": {"replicas": 9}}, "application/merge-patch+json")
    assert status == 200 and after["status"]["readyReplicas"] == 0
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
    status, after = request(healthy, "PATCH", path, {"metadata": {"labels": {"seen": "yes"}}, "status": {"replicas": 0}},
                            "application/merge-patch+json")
    assert status == 200 and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"]["replicas"] == before["status"]["replicas"]
    status, document = request(healthy, "PUT", "/api/v1/namespaces/default/configmaps/x/status", {})
    assert status == 404
    status, _ = request(healthy, "PATCH", path + "/status", {"status": before["status"]},  # put it back
                        "application/merge-patch+json")
    assert status == 200


def test_least_privilege_may_neither_update_nor_patch(healthy: Sandbox) -> None:
    path = "/apis/apps/v1/namespaces/kube-addons/deployments/external-dns"
    status, document = request(healthy, "PATCH", path, {"metadata": {"labels": {"x": "y"}}},
                               "application/merge-patch+json", kubeconfig="kubeconfig-least-privilege")
    assert status == 403 and document["reason"] == "Forbidden"
    assert 'cannot patch resource "deployments" in API group "apps"' in document["message"]
    _, current = request(healthy, "GET", path)
    status, document = request(healthy, "PUT", path + "/status", current, kubeconfig="kubeconfig-least-privilege")
    assert status == 403 and 'cannot update resource "deployments/status"' in document["message"]


# --- the patch formats on their own --------------------------------------------------------------------------


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    assert merge_patch(target, {"a": "z", "c": {"f": None}, "l": [3]}) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert target["c"] == {"d": "e", "f": "g"}  # unchanged
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_json_patch_rfc6902() -> None:
    doc = {"foo": ["bar", "baz"], "obj": {"a/b": 1, "m~n": 2}}
    assert json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}])["foo"] == ["bar", "qux", "baz"]
    assert json_patch(doc, [{"op": "add", "path": "/foo/-", "value": "end"}])["foo"][-1] == "end"
    assert json_patch(doc, [{"op": "remove", "path": "/obj/a~1b"}])["obj"] == {"m~n": 2}
    assert json_patch(doc, [{"op": "replace", "path": "/obj/m~0n", "value": 3}])["obj"]["m~n"] == 3
    moved = json_patch(doc, [{"op": "move", "from": "/foo/0", "path": "/first"}])
    assert moved["first"] == "bar" and moved["foo"] == ["baz"]
    assert json_patch(doc, [{"op": "copy", "from": "/obj", "path": "/copy"}])["copy"] == doc["obj"]
    assert json_patch(doc, [{"op": "test", "path": "/foo", "value": ["bar", "baz"]}]) == doc
    with pytest.raises(PatchError) as failed:
        json_patch(doc, [{"op": "test", "path": "/foo/0", "value": "baz"}])
    assert failed.value.code == 422 and failed.value.message == "testing value /foo/0 failed: test failed"
    with pytest.raises(PatchError) as missing:
        json_patch(doc, [{"op": "replace", "path": "/nope", "value": 1}])
    assert missing.value.code == 422
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "add", "path": "/foo/7", "value": 1}])
    assert doc == {"foo": ["bar", "baz"], "obj": {"a/b": 1, "m~n": 2}}  # never changed in place


def _deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "finalizers": ["a"]},
            "spec": {"template": {"spec": {"containers": containers, **spec}}}}


def test_strategic_merge_merges_containers_by_name() -> None:
    live = _deployment([{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
                         "ports": [{"containerPort": 80, "name": "http"}]},
                        {"name": "sidecar", "image": "proxy:1"}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 80,
                                                                                          "protocol": "TCP"}]}]}}}}
    merged = strategic_merge_patch(live, patch, "apps", "Deployment")
    app, sidecar = merged["spec"]["template"]["spec"]["containers"]
    assert app == {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                   "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}
    assert sidecar == {"name": "sidecar", "image": "proxy:1"}
    added = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n"}]}}}},
                                  "apps", "Deployment")
    assert [c["name"] for c in added["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar", "new"]
    # a list without a merge strategy (args, tolerations) is replaced; a JSON merge patch replaces containers
    replaced = strategic_merge_patch(_deployment([{"name": "app", "args": ["a", "b"]}]), {"spec": {"template": {
        "spec": {"containers": [{"name": "app", "args": ["c"]}]}}}}, "apps", "Deployment")
    assert replaced["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]
    assert len(merge_patch(live, patch)["spec"]["template"]["spec"]["containers"]) == 1
    assert merge_key("", "Pod", ("spec", "containers", "volumeMounts")) == (True, "mountPath")
    assert merge_key("", "Service", ("spec", "ports")) == (True, "port")
    assert merge_key("", "Pod", ("spec", "tolerations")) == (False, None)


def test_strategic_merge_directives() -> None:
    live = _deployment([{"name": "app", "image": "a"}, {"name": "sidecar", "image": "s"}],
                       volumes=[{"name": "v", "emptyDir": {}}], strategy={"type": "RollingUpdate"})
    deleted = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}]}}}}, "apps", "Deployment")
    assert [c["name"] for c in deleted["spec"]["template"]["spec"]["containers"]] == ["app"]
    replaced = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "o"}, {"$patch": "replace"}]}}}}, "apps", "Deployment")
    assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "o"}]
    map_replaced = strategic_merge_patch(live, {"spec": {"template": {"spec": {"$patch": "replace", "containers": []}}}},
                                         "apps", "Deployment")
    assert map_replaced["spec"]["template"]["spec"] == {"containers": []}
    map_deleted = strategic_merge_patch(live, {"spec": {"template": {"$patch": "delete"}}}, "apps", "Deployment")
    assert "template" not in map_deleted["spec"]
    primitives = strategic_merge_patch(live, {"metadata": {"finalizers": ["b", "a"], "$deleteFromPrimitiveList/finalizers":
                                                           ["a"]}}, "apps", "Deployment")
    assert primitives["metadata"]["finalizers"] == ["b"]
    retained = strategic_merge_patch(live, {"spec": {"template": {"spec": {"volumes": [
        {"name": "v", "configMap": {"name": "c"}, "$retainKeys": ["name", "configMap"]}]}}}}, "apps", "Deployment")
    assert retained["spec"]["template"]["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]
    ordered = strategic_merge_patch(live, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "app", "image": "a2"}]}}}}, "apps", "Deployment")
    assert [(c["name"], c["image"]) for c in ordered["spec"]["template"]["spec"]["containers"]] == [
        ("sidecar", "s"), ("app", "a2")]
    with pytest.raises(PatchError) as keyless:
        strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
                              "apps", "Deployment")
    assert "does not contain declared merge key: name" in keyless.value.message
