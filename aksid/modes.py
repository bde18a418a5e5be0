"""The modes a run can be in: an open registry, so a new mode is one `aksid.run.sources.register(...)` call.

The built-in modes are named here (checks and the catalogue need their names without loading a run); each has
its evidence source in aksid/run/sources.py. The results schema accepts any lower-case mode name; the catalogue
lists, per check, the modes it runs in (every mode, unless its `check` marker names fewer).
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

_registered: dict[str, bool] = {mode: mode in SELECTABLE_MODES for mode in MODES}  # mode -> selectable


def register_mode(name: str, *, selectable: bool) -> None:
    """A mode an evidence source brings (aksid.run.sources.register)."""
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"mode {name!r} must be one lower-case word")
    _registered[name] = selectable


def all_modes() -> tuple[str, ...]:
    return tuple(_registered)


def selectable_modes() -> tuple[str, ...]:
    return tuple(mode for mode, selectable in _registered.items() if selectable)


class SelectableModes:
    """`--aksid-mode`'s choices, read when the option is parsed: a mode registered after the parser was built counts."""

    def __contains__(self, mode: object) -> bool:
        return mode in selectable_modes()

    def __iter__(self):  # noqa: ANN204 - argparse lists the choices in its error message
        return iter(selectable_modes())
