"""Hosts the cert-manager model adds to the running nginx (ingress-nginx serving a new Ingress): one server
block per host under the demo nginx's `hosts/`, then SIGHUP, nginx's graceful reload."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from aksid.sandbox.processes import send_signal


def _hosts_dir(nginx: dict[str, Any]) -> Path:
    return Path(nginx["root"]) / "hosts"


def add_host(nginx: dict[str, Any], host: str, chain_pem: str, key_pem: str) -> None:
    folder = _hosts_dir(nginx) / host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tls.crt").write_text(chain_pem, encoding="utf-8")
    key = folder / "tls.key"
    key.write_text(key_pem, encoding="utf-8")
    os.chmod(key, 0o600)
    (_hosts_dir(nginx) / f"{host}.conf").write_text(f"""# {host}: added by the sandbox's cert-manager model
server {{
    listen {nginx['address']}:{nginx['https_port']} ssl http2;
    server_name {host};
    ssl_certificate {folder}/tls.crt;
    ssl_certificate_key {folder}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root {nginx['root']}/html;
    index index.html;
}}
server {{
    listen {nginx['address']}:{nginx['http_port']};
    server_name {host};
    return 308 https://$host$request_uri;
}}
""", encoding="utf-8")
    send_signal(int(nginx["pid"]), signal.SIGHUP)


def remove_host(nginx: dict[str, Any], host: str) -> None:
    conf = _hosts_dir(nginx) / f"{host}.conf"
    if conf.exists():
        conf.unlink()
        send_signal(int(nginx["pid"]), signal.SIGHUP)


def served_hosts(nginx: dict[str, Any]) -> list[str]:
    folder = _hosts_dir(nginx)
    return [path.stem for path in folder.glob("*.conf")] if folder.is_dir() else []
