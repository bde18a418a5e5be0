"""The xdist hand-over: the controller collects once and publishes; every worker receives the evidence.

One target: a stream of frames (aksid.snapshot.HandOver) the workers decode while the controller still lists, so
once collection ends only the document's small rest is left to read; one worker (the scribe) also writes
snapshot.json from it. A fleet: an index of the members' snapshots, written whole (then renamed) or not at all. A
collection that fails leaves a `.failed` file beside either, saying why, so no worker waits for evidence that will
not come; a worker gives up after WORKER_WAIT seconds in any case. Provision and replay runs hand over the
snapshot file itself. Nothing here knows pytest: the `workerinput` mapping is xdist's, the rest is files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.fleet import INDEX, Member, read_index
from aksid.snapshot import EvidenceUnavailable, HandOver, JsonScribe, Snapshot
from aksid.snapshot_target import target_from_snapshot

WORKER_WAIT = 3600.0  # seconds a worker waits for the controller's snapshot
STREAM = ".snapshot-handover.marshal"
SCRIBED = ".snapshot-written-by-a-worker"  # a worker wrote snapshot.json (JsonScribe); the controller need not


def failed_marker(path: Path) -> Path:
    return path.with_name(f".{path.name}.failed")


class Publisher:
    """The controller's side: where the evidence goes while it is collected, and what each worker is told."""

    def __init__(self, reports_dir: Path, fleet: bool) -> None:
        self.reports_dir = reports_dir
        self.path = reports_dir / (INDEX if fleet else STREAM)
        for stale in (self.path, failed_marker(self.path), reports_dir / SCRIBED):
            stale.unlink(missing_ok=True)
        self.stream = None if fleet else HandOver(self.path)
        self._scribe_assigned = False

    def page(self, key: str, items: list[dict[str, Any]]) -> None:
        if self.stream is not None:
            self.stream.page(key, items)

    def finish(self, document: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.finish(document)

    def failed(self, exc: BaseException) -> None:
        """The workers must hear of it, or they would wait for evidence that will not come."""
        if self.stream is not None:
            self.stream.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        failed_marker(self.path).write_text(f"the evidence collection failed: {type(exc).__name__}: {exc}",
                                            encoding="utf-8")

    def beside(self, collect: Callable[[], None], allocations: Callable[[], Any]) -> threading.Thread:
        """Collect in a thread of its own, beside the workers' start; a failure is published before it is raised."""
        def run() -> None:
            try:
                with allocations():
                    collect()
            except BaseException as exc:  # noqa: BLE001 - the workers must hear of it, or they would wait forever
                self.failed(exc)
                raise

        thread = threading.Thread(target=run, name="aksid-collect", daemon=True)
        thread.start()
        return thread

    def tell(self, workerinput: MutableMapping[str, Any]) -> None:
        """What one worker needs to find the evidence; the first worker told also writes snapshot.json."""
        tell(workerinput, self.path, fleet=self.stream is None, stream=self.stream is not None)
        if self.stream is not None and not self._scribe_assigned:
            workerinput["aksid_scribe"] = str((self.reports_dir / "snapshot.json").resolve())
            self._scribe_assigned = True

    def end(self, snapshot: Snapshot | None, snapshot_json: Path) -> None:
        """Remove the stream; write snapshot.json unless the scribe did (should it have failed: a full disk)."""
        if self.stream is None:
            return
        self.path.unlink(missing_ok=True)
        scribed = self.reports_dir / SCRIBED
        if scribed.exists():
            scribed.unlink()
        elif snapshot is not None:
            snapshot.save(snapshot_json)


def tell(workerinput: MutableMapping[str, Any], path: Path, fleet: bool = False, stream: bool = False) -> None:
    """A snapshot file (or fleet index, or stream) every worker reads."""
    workerinput["aksid_snapshot"] = str(path.resolve())
    workerinput["aksid_fleet"] = fleet
    workerinput["aksid_handover"] = stream


@dataclass
class Received:
    members: list[Member]
    fleet: bool


def receive(workerinput: Mapping[str, Any], overrides: list[str] | None = None) -> Received:
    """A worker's copy of the evidence: the fleet's members, or the one target's (overrides: a replay's --aksid-set;
    in live modes they are in the snapshot's target already)."""
    path = Path(workerinput["aksid_snapshot"])
    if workerinput.get("aksid_fleet"):
        _await(path)
        members = []
        for name, member_path in read_index(path).items():
            snapshot = Snapshot.load(member_path)
            members.append(Member(name, target_from_snapshot(snapshot), snapshot=snapshot, snapshot_path=member_path))
        return Received(members, fleet=True)
    if workerinput.get("aksid_handover"):
        snapshot = _take_over(path, workerinput.get("aksid_scribe"))
    else:
        _await(path)
        snapshot = Snapshot.load(path)
    return Received([Member("", target_from_snapshot(snapshot, overrides), snapshot=snapshot)], fleet=False)


def _await(path: Path) -> None:
    """Wait for the controller's snapshot (bounded: a collection is bounded by its own timeouts)."""
    wait = waiter(path)
    while not path.exists():
        wait()


def waiter(path: Path, pause: float = 0.05) -> Callable[[], None]:
    """One pause of a worker waiting for the evidence; raises when the collection failed or took too long."""
    deadline = time.monotonic() + WORKER_WAIT

    def wait() -> None:
        if failed_marker(path).exists():
            raise EvidenceUnavailable(failed_marker(path).read_text(encoding="utf-8"))
        if time.monotonic() > deadline:
            raise EvidenceUnavailable(f"the controller wrote no snapshot to {path} within {WORKER_WAIT:.0f} s")
        time.sleep(pause)
    return wait


def _take_over(path: Path, scribe_for: str | None) -> Snapshot:
    """Read the stream while the controller collects (short pauses: the last frame is small and awaited); the scribe
    also writes snapshot.json, so the controller has only the workers' reports left to take."""
    if scribe_for is None:
        return HandOver.take_over(path, waiter(path, pause=0.01))
    snapshot_json = Path(scribe_for)
    scribe = JsonScribe(snapshot_json.with_name(".snapshot-scribe.spool"))
    try:
        snapshot = HandOver.take_over(path, waiter(path, pause=0.01), scribe)
        try:
            scribe.save(snapshot.document, snapshot_json)
            (snapshot_json.parent / SCRIBED).touch()
        except OSError:
            pass
        return snapshot
    finally:
        scribe.close()
