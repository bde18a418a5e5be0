"""`aksid sweep`: clean up after a provision run that could not (killed with SIGKILL, a lost node)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from aksid.config import ConfigError, resolve_target
from aksid.provision.manifests import RUN_LABEL
from aksid.provision.teardown import SWEPT_KINDS, Created, KubeObjects, sweep

_AGE = re.compile(r"^(\d+)([mhd])$")


def parse_age(text: str) -> dt.timedelta:
    match = _AGE.match(text.strip())
    if not match:
        raise ValueError(f"--older-than '{text}' is not an age like 30m, 2h or 1d")
    number, unit = int(match.group(1)), match.group(2)
    return dt.timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: number})


def sweep_command(args: argparse.Namespace) -> int:
    """Delete what the named run (or every run older than AGE) left; 0 when nothing is left."""
    from kubernetes import client as kclient

    from aksid.collect.kube import kube_configuration

    try:
        age = parse_age(args.older_than) if args.older_than else None
        target = resolve_target(
            profile=Path(args.aksid_profile).expanduser() if args.aksid_profile else None,
            env_file=Path(args.aksid_env_file).expanduser() if args.aksid_env_file else None,
            overrides=args.aksid_set, kube_context=args.aksid_kube_context)
        configuration = kube_configuration(target)
    except (ConfigError, ValueError) as exc:
        print(f"aksid sweep: {exc}", file=sys.stderr)
        return 4
    cutoff = dt.datetime.now(dt.UTC) - age if age else None
    spared: list[Created] = []
    deleted: list[str] = []

    def younger(created: Created) -> bool:
        if cutoff is None:
            return False
        try:
            kept = dt.datetime.fromisoformat(created.created or "") > cutoff
        except ValueError:
            kept = True  # no readable creation time: not provably old enough, so kept
        if kept:
            spared.append(created)
        return kept

    def said(line: str) -> None:
        deleted.append(line)
        print(f"aksid {line}")

    objects = KubeObjects(kclient.ApiClient(configuration))
    try:
        failed = sweep(objects, args.run_id, said, keep=younger)
    except Exception as exc:  # noqa: BLE001 - one sentence: the cluster could not be listed
        print(f"aksid sweep: could not list labelled objects: {exc}", file=sys.stderr)
        return 1
    for created in failed:
        print(f"aksid sweep: could not delete {created}", file=sys.stderr)
    if not deleted and not failed:
        # silence would not tell "nothing was left" from "looked in the wrong cluster"
        print(f"aksid sweep: {_nothing(args.run_id, args.older_than, len(spared), configuration.host)}")
    return 1 if failed else 0


def _nothing(run_id: str | None, older_than: str | None, spared: int, host: str) -> str:
    """What was looked for when nothing matched: the label, the kinds, the cluster; and what the age spared."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    kinds = ", ".join(kind.lower() + ("es" if kind.endswith("s") else "s") for kind in SWEPT_KINDS)
    line = f"nothing to remove: no {kinds} labelled {selector} in the cluster at {host}"
    if spared:
        line += f" older than {older_than} ({spared} younger kept)"
    return line
