"""A request as ARM reads it: the path split into percent-decoded segments (and their lowercased key), the query
with names matched case-insensitively, and this server's own address for the nextLinks it writes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from aksid.sandbox.arm.ids import Key, path_segments


@dataclass(frozen=True)
class ArmRequest:
    method: str
    target: str  # path with query, as received
    path: str
    segments: tuple[str, ...]  # percent-decoded, original casing
    key: Key
    query: list[tuple[str, str]]
    base_url: str  # https://host:port of this server, for nextLinks

    @classmethod
    def parse(cls, method: str, target: str, base_url: str) -> ArmRequest:
        # Not urlsplit: it would read a `//subscriptions/...` path (a scope with a leading slash) as a host.
        path, _, query = target.partition("#")[0].partition("?")
        segments = path_segments(path)
        return cls(
            method=method.upper(),
            target=target,
            path=path,
            segments=segments,
            key=tuple(part.lower() for part in segments),
            query=parse_qsl(query, keep_blank_values=True),
            base_url=base_url,
        )

    def param(self, name: str) -> str | None:
        """A query parameter, its name matched case-insensitively as ARM does."""
        for key, value in self.query:
            if key.lower() == name.lower():
                return value
        return None
