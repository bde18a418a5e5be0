"""Where a run's evidence comes from: one source per mode, one interface (members → collect → snapshot).

A source names the run's members (one target, or a fleet's), then collects each member's snapshot. The modes a
run can be started in are the registered sources: a new mode is one `register(...)` call (and the `--aksid-mode`
choices follow). Each source imports its collectors when it collects, so a static or replay run never loads the
Kubernetes or Azure clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid import modes
from aksid.config import LIVE_ONLY_FIELDS, ConfigError, Target, resolve_target
from aksid.fleet import Member, member_name, unique_names
from aksid.run.options import RunOptions
from aksid.snapshot import Snapshot
from aksid.snapshot_target import target_from_snapshot


class RunError(Exception):
    """The run cannot start as asked; the message is one sentence naming the cause (a usage error, exit 4)."""


@dataclass
class CollectContext:
    """What a source may use while it collects: progress lines, always-printed lines, the xdist page stream."""

    progress: Callable[[str], None]
    say: Callable[[str], None]
    on_page: Callable[[str, list[dict[str, Any]]], None] | None = None
    live: Callable[[str], None] | None = None  # one line rewritten in place (a terminal, without -v); None: CI lines


class EvidenceSource:
    """The interface every mode implements; `collects=False` when the evidence exists already (replay)."""

    name = ""
    live = False  # the evidence comes from a live environment (checks of status, answers, handshakes apply)
    collects = True

    def members(self, options: RunOptions) -> list[Member]:
        raise NotImplementedError

    def collect(self, member: Member, options: RunOptions, context: CollectContext) -> Snapshot:
        raise NotImplementedError


SOURCES: dict[str, EvidenceSource] = {}


def register(source: EvidenceSource, *, selectable: bool = True) -> EvidenceSource:
    """Make `source.name` a mode: `--aksid-mode NAME` selects it when `selectable` (replay is chosen by its file)."""
    SOURCES[source.name] = source
    modes.register_mode(source.name, selectable=selectable)
    return source


def source_for(mode: str) -> EvidenceSource:
    try:
        return SOURCES[mode]
    except KeyError:
        raise RunError(f"no evidence source for mode {mode!r}; modes are {', '.join(SOURCES)}") from None


def one_target_name(options: RunOptions, target: Target) -> str:
    """A one-target run's name: its profile's `name:` or stem, else its cluster's name (`aksid merge` keys on it)."""
    return member_name(options.profile) if options.profile is not None and options.profile.is_file() else (
        target.cluster_name)


def _resolve(options: RunOptions, profile: Path | None, unused: frozenset[str] = frozenset()) -> Target:
    try:
        return resolve_target(profile=profile, env_file=options.env_file, overrides=options.overrides,
                              kube_context=options.kube_context, unused=unused)
    except (ConfigError, ValueError) as exc:
        raise RunError(str(exc)) from None


class AttachSource(EvidenceSource):
    """Read a live environment, read-only: the Kubernetes API, ARM, the zone's name servers, the demo host."""

    name = "attach"
    live = True

    def members(self, options: RunOptions) -> list[Member]:
        from aksid.collect.arm import azure_credential  # the live modes only: the Kubernetes and Azure clients
        from aksid.collect.kube import kube_configuration

        if options.is_fleet:
            try:
                names = unique_names(list(options.targets))
            except ConfigError as exc:
                raise RunError(str(exc)) from None
            named = list(zip(names, options.targets, strict=True))
        else:
            named = [(None, options.profile)]
        members = []
        for name, profile in named:
            target = _resolve(options, profile)
            try:
                members.append(Member(name or one_target_name(options, target), target, kube_configuration(target),
                                      azure_credential(target)))
            except (ConfigError, ValueError) as exc:
                raise RunError(str(exc)) from None
        return members

    def collect(self, member: Member, options: RunOptions, context: CollectContext) -> Snapshot:
        from aksid.collect.live import collect_live

        return collect_live(member.target, member.kube_configuration, member.credential, context.progress,
                            read_secrets=options.read_secrets, on_page=context.on_page)


class ProvisionSource(AttachSource):
    """Attach, then probes and a canary, observed and removed: a new snapshot, the attach one plus `provision`."""

    name = "provision"

    def collect(self, member: Member, options: RunOptions, context: CollectContext) -> Snapshot:
        from aksid.interrupts import terminate_as_interrupt
        from aksid.provision.run import provision
        from aksid.redact import redact_provision

        attached = super().collect(member, options, context)
        with terminate_as_interrupt():
            evidence = provision(member.target, member.kube_configuration, member.credential, attached.document,
                                 context.say, live=context.live)
        return Snapshot({**attached.document, "provision": redact_provision(evidence), "mode": self.name})


class StaticSource(EvidenceSource):
    """A repository's files (manifests, Terraform plans, ARM templates): no cluster, no cloud, never a socket."""

    name = "static"

    def members(self, options: RunOptions) -> list[Member]:
        if not (options.manifests or options.plans or options.arm_templates):
            raise RunError("static mode needs at least one of --aksid-manifests, --aksid-plan, --aksid-arm-template")
        target = _resolve(options, options.profile, unused=LIVE_ONLY_FIELDS)
        return [Member(one_target_name(options, target), target)]

    def collect(self, member: Member, options: RunOptions, context: CollectContext) -> Snapshot:
        from aksid.collect.static.build import collect_static
        from aksid.collect.static.errors import StaticInputError

        try:
            return collect_static(member.target, list(options.manifests), list(options.plans),
                                  list(options.arm_templates), options.source_root or Path.cwd(),
                                  arm_parameters=list(options.arm_parameters))
        except StaticInputError as exc:
            raise RunError(str(exc)) from None


class ReplaySource(EvidenceSource):
    """A saved snapshot, re-judged (with `--aksid-set`, under other settings): no network at all."""

    name = "replay"
    live = True
    collects = False

    def members(self, options: RunOptions) -> list[Member]:
        assert options.replay is not None
        try:
            snapshot = Snapshot.load(options.replay)
            target = target_from_snapshot(snapshot, options.overrides)
        except (ConfigError, ValueError) as exc:
            raise RunError(str(exc)) from None
        return [Member(one_target_name(options, target), target, snapshot=snapshot, snapshot_path=options.replay)]

    def collect(self, member: Member, options: RunOptions, context: CollectContext) -> Snapshot:
        return member.snapshot


for _source in (AttachSource(), ProvisionSource(), StaticSource()):
    register(_source)
register(ReplaySource(), selectable=False)
