"""The modes a run can be in: an open list, so a new mode is one line here.

The results schema accepts any lower-case mode name; the catalogue lists, per check, the modes it
runs in (every mode, unless its `check` marker names fewer).
"""

from __future__ import annotations

# attach: read a live environment; replay: re-judge a saved snapshot (no network);
# provision: attach, then create labelled probes and a canary, observe, and remove them all.
# static: read a repository's files (manifests, a Terraform plan, an ARM template); no cluster, no cloud.
MODES: tuple[str, ...] = ("attach", "replay", "provision", "static")
# Where there is a live environment behind the evidence (checks of object status, nodes, DNS answers, handshakes).
LIVE_MODES: tuple[str, ...] = ("attach", "replay", "provision")
# The modes a run is started in with --aksid-mode (replay is chosen by --aksid-replay, a saved snapshot).
SELECTABLE_MODES: tuple[str, ...] = tuple(mode for mode in MODES if mode != "replay")
