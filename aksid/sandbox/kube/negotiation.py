"""Content negotiation: which form (JSON, Table, PartialObjectMetadata, aggregated discovery) a client asked for."""

from __future__ import annotations

from dataclasses import dataclass

JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class MediaRange:
    mime: str
    params: dict[str, str]

    @property
    def is_json(self) -> bool:
        return self.mime in ("application/json", "application/*", "*/*")

    def meta_as(self, *kinds: str) -> str | None:
        """The meta.k8s.io version when this range asks for one of `kinds` (`as=Table;g=meta.k8s.io;v=v1`)."""
        if self.params.get("as") in kinds and self.params.get("g") == "meta.k8s.io" \
                and self.params.get("v") in ("v1", "v1beta1"):
            return self.params["v"]
        return None


def parse_accept(header: str | None) -> list[MediaRange]:
    ranges = []
    for part in (header or "").split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), params))
    return ranges


def choose_object_format(accept: str | None) -> tuple[str, str]:
    """("table"|"partial"|"json", meta.k8s.io version): the first acceptable range wins.

    Protobuf or YAML ranges are skipped: everything is answered in JSON, which real clients also accept.
    """
    for media in parse_accept(accept):
        if not media.is_json:
            continue
        if "as" not in media.params:
            return "json", ""
        if version := media.meta_as("Table"):
            return "table", version
        if version := media.meta_as("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial", version
    return "json", ""


def choose_discovery_format(accept: str | None) -> str | None:
    """The apidiscovery.k8s.io version when aggregated discovery comes before legacy in Accept, else None."""
    for media in parse_accept(accept):
        if not media.is_json:
            continue
        params = media.params
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        if "as" not in params:
            return None
    return None
