"""The xdist hand-over: the workers read the evidence as it is collected, and end with the controller's document."""

from __future__ import annotations

import copy

import pytest

from aksid.snapshot import HandOver, JsonScribe, Snapshot, error, new_document, ok


def _document() -> dict:
    document = new_document({"domain": "example.test"}, "attach", "2026-01-01T00:00:00+00:00")
    pods = [{"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "a"}} for i in range(5)]
    document["kube"] = {"v1/Pod": ok(pods), "v1/Node": error("the API answered 500 to listing nodes"),
                        "v1/Namespace": ok([])}
    document["azure"] = {"dnsZone": ok({"name": "example.test"})}
    return document


def _write(path, document) -> None:
    handover = HandOver(path)
    pods = document["kube"]["v1/Pod"]["value"]
    handover.page("v1/Pod", pods[:3])
    handover.page("v1/Node", [{"kind": "Node", "metadata": {"name": "n0"}}])  # then its listing failed
    handover.page("v1/Pod", pods[3:])
    handover.finish(document)


def test_the_workers_copy_equals_the_controllers_document(tmp_path) -> None:
    document = _document()
    expected = copy.deepcopy(document)
    _write(tmp_path / "handover", document)
    assert document == expected  # the controller's document is left as it was
    taken = HandOver.take_over(tmp_path / "handover", wait=lambda: pytest.fail("the stream is complete"))
    assert taken.document == expected  # the failed kind keeps its error: the page it streamed is dropped


def test_frames_read_as_they_are_written(tmp_path) -> None:
    """A reader that finds half a frame waits for the rest, whatever the byte the writer stopped at."""
    _write(tmp_path / "whole", _document())
    data = (tmp_path / "whole").read_bytes()
    growing = tmp_path / "growing"
    written = [0]

    def wait() -> None:  # the writer appends a few more bytes each time the reader has to wait
        written[0] += 7
        growing.write_bytes(data[:written[0]])

    taken = HandOver.take_over(growing, wait)
    assert taken.document == _document() and written[0] >= len(data)


def test_a_failed_collection_stops_the_wait(tmp_path) -> None:
    path = tmp_path / "handover"
    handover = HandOver(path)
    handover.page("v1/Pod", [{"kind": "Pod", "metadata": {"name": "p"}}])
    handover.close()

    def wait() -> None:
        raise RuntimeError("the evidence collection failed")

    with pytest.raises(RuntimeError, match="collection failed"):
        HandOver.take_over(path, wait)


def test_the_scribes_snapshot_is_the_controllers_byte_for_byte(tmp_path) -> None:
    """With -n a worker writes snapshot.json from the pages it encoded as they came: the same bytes as Snapshot.save."""
    document = _document()
    pods = [{"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "ns-é", "labels": {"b": "1", "a": "ü"}},
             "spec": {"nodeName": f"n{i % 3}"}} for i in range(1300)]  # more than one of save's pieces (_CHUNK)
    document["kube"]["v1/Pod"] = ok(pods)
    handover = HandOver(tmp_path / "handover")
    for start in range(0, len(pods), 250):
        handover.page("v1/Pod", pods[start:start + 250])
    handover.page("v1/Namespace", [])
    handover.page("v1/Node", [{"kind": "Node", "metadata": {"name": "n0"}}])
    handover.finish(document)
    scribe = JsonScribe(tmp_path / "spool")
    taken = HandOver.take_over(tmp_path / "handover", wait=lambda: pytest.fail("the stream is complete"), scribe=scribe)
    scribe.save(taken.document, tmp_path / "scribed.json")
    scribe.close()
    Snapshot(document).save(tmp_path / "saved.json")
    assert (tmp_path / "scribed.json").read_bytes() == (tmp_path / "saved.json").read_bytes()
    assert not (tmp_path / "spool").exists()
