"""What the controller models share: the stores, the real servers' endpoints, pod logs, the knobs."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aksid.sandbox.armapi import ArmStore

ENDPOINTS_FILE = "controllers.json"  # written by runtime.up (0600: it holds the DNS update key)


@dataclass
class Endpoints:
    """Where the real servers are: knot (RFC 2136 with a TSIG key), the pebbles, nginx."""

    zone: str
    dns_servers: list[str]  # "ip:port" of every authoritative server of the zone
    update_key: dict[str, str]
    cas: dict[str, dict[str, Any]]  # prod/staging -> {pid, directory_url, https_ca_bundle, roots_pem}
    nginx: dict[str, Any] | None  # {root, pid, address, https_port, http_port} or None (no demo host)

    @classmethod
    def load(cls, state_dir: Path) -> Endpoints | None:
        path = state_dir / ENDPOINTS_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class World:
    kube: Any  # KubeStore
    arm: ArmStore
    state_dir: Path
    endpoints: Endpoints | None
    knobs: dict[str, Any] = field(default_factory=dict)  # the scenario's `controllers:` section
    logs: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, pod) -> its log
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log_of(self, namespace: str, pod: str) -> str | None:
        with self.lock:
            return self.logs.get((namespace, pod))

    def append_log(self, namespace: str, pod: str, text: str) -> None:
        with self.lock:
            self.logs[(namespace, pod)] = self.logs.get((namespace, pod), "") + text
