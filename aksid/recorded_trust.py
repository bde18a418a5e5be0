"""The trust store a snapshot was judged against, carried in the snapshot so a replay does not depend on the file.

A sandbox run's trust store lives in the sandbox's temporary folder, and a team's custom bundle may be moved or
rotated; replaying the snapshot later would then fail TLS-001 on an unreadable file. Collection records the
configured bundle's root certificates (public by nature, like the served chain the snapshot already holds) in
the snapshot's `trust_store` section; a check reads the file when it is there and falls back to that copy, with a
note, when it is gone. Mozilla's default store (certifi) is not recorded: it ships with aksid itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from aksid.trust import TrustStore, TrustStoreError, load_store, parse_chain


def record(path: str | None) -> dict[str, Any] | None:
    """The snapshot's `trust_store` section: {path, certificates: [PEM]} of a configured bundle; None for the default
    store or a bundle that cannot be read (TLS-001 then reports the file itself, as before)."""
    if not path:
        return None
    try:
        store = load_store(path)
    except TrustStoreError:
        return None
    return {"path": str(path), "certificates": [root.public_bytes(Encoding.PEM).decode() for root in store.roots]}


def store_for(path: str | None, document: Mapping[str, Any]) -> tuple[TrustStore, str | None]:
    """The trust store to judge a chain with, and a note when it is the snapshot's copy: the configured file while it
    exists; the copy recorded at collection when the file is gone and the setting still names it (a replay)."""
    recorded = document.get("trust_store") or {}
    if path and not Path(path).exists() and recorded.get("path") == str(path) and recorded.get("certificates"):
        roots = tuple(parse_chain(list(recorded["certificates"])))
        note = (f"{path} no longer exists: the {len(roots)} root certificate(s) the snapshot recorded from it at "
                "collection were used")
        return TrustStore(f"{path} (as recorded in the snapshot)", roots), note
    return load_store(path), None
