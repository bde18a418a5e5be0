"""`aksid sweep`: clean up after a provision run that could not (killed with SIGKILL, a lost node)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from aksid.config import ConfigError, resolve_target
from aksid.provision.teardown import Created, KubeObjects, sweep

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

    def younger(created: Created) -> bool:
        if cutoff is None:
            return False
        try:
            return dt.datetime.fromisoformat(created.created or "") > cutoff
        except ValueError:
            return True  # no readable creation time: not provably old enough, so kept

    objects = KubeObjects(kclient.ApiClient(configuration))
    try:
        failed = sweep(objects, args.run_id, lambda line: print(f"aksid {line}"), keep=younger)
    except Exception as exc:  # noqa: BLE001 - one sentence: the cluster could not be listed
        print(f"aksid sweep: could not list labelled objects: {exc}", file=sys.stderr)
        return 1
    for created in failed:
        print(f"aksid sweep: could not delete {created}", file=sys.stderr)
    return 1 if failed else 0
