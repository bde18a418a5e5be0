"""`aksid deploy [--out DIR]`: aksid's own rights (RBAC manifests, Azure role definitions) and its in-cluster
nightly (cronjob.yaml), copied out of the installed package, where a pip user could not otherwise reach them."""

from __future__ import annotations

import sys
from pathlib import Path

from aksid.paths import deploy_dir

# What each file is for, in the order to apply them (README, "Rights: what the suite itself needs").
_APPLY = (
    ("rbac.yaml", "kubectl apply -f {out}/rbac.yaml  (attach mode)"),
    ("rbac-read-secrets.yaml", "kubectl apply -f {out}/rbac-read-secrets.yaml  (+ --aksid-read-secrets)"),
    ("rbac-provision.yaml", "kubectl apply -f {out}/rbac-provision.yaml  (+ --aksid-mode provision, aksid sweep)"),
    ("azure-role.json", "az role definition create --role-definition @{out}/azure-role.json  (after replacing "
                        "<subscription-id>)"),
)


def shipped_files() -> list[Path]:
    """The deploy/ files this installation carries (the package data of aksid.deploy)."""
    where = deploy_dir()
    if where is None:
        return []
    return sorted(path for path in where.iterdir() if path.is_file() and path.suffix in (".yaml", ".json"))


def deploy_command(out: Path) -> int:
    files = shipped_files()
    if not files:
        print("aksid deploy: this installation carries no deploy/ files (reinstall aksid: pip install .)", file=sys.stderr)
        return 3
    if out.exists() and not out.is_dir():
        print(f"aksid deploy: --out {out} is a file; give a folder", file=sys.stderr)
        return 4
    # a file the user edited (cronjob.yaml's <...> values filled in) must never be replaced without a word
    clashes = [out / f.name for f in files if (out / f.name).exists() and (out / f.name).read_bytes() != f.read_bytes()]
    if clashes:
        print(f"aksid deploy: {', '.join(map(str, clashes))} already exist(s) with other content; "
              "remove them or choose another --out", file=sys.stderr)
        return 4
    out.mkdir(parents=True, exist_ok=True)
    for source in files:
        (out / source.name).write_bytes(source.read_bytes())
    print(f"aksid deploy: wrote {len(files)} files to {out}: {', '.join(f.name for f in files)}")
    print("apply what the modes you run need, file by file (never the whole folder):")
    for name, how in _APPLY:
        if (out / name).is_file():
            print(f"  {how.format(out=out)}")
    return 0
