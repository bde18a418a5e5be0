"""Did-you-mean: the closest known names to a mistyped one, for one-sentence usage errors.

A typo (`healty`, `subscripton_id`) is answered with the one or few names it was probably meant to be, not with every
name there is; only when nothing is close does a message fall back to listing them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's default cutoff: `healty` → `healthy` (0.92), `subscripton_id` → `subscription_id` (0.97), while `foo`
# matches no mode at all rather than the least unlike one.
CUTOFF = 0.6


def closest(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names nearest to `word`, best first (case is ignored: `Static` is `static`)."""
    by_folded: dict[str, str] = {}
    for name in known:
        by_folded.setdefault(name.lower(), name)
    matches = difflib.get_close_matches(word.lower(), list(by_folded), n=n, cutoff=CUTOFF)
    return [by_folded[match] for match in matches]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`did you mean 'x'?` (or `'x' or 'y'`), or "" when no known name is close: the caller says what else helps
    (the few names there are, or where the many are listed)."""
    matches = closest(word, known)
    return "did you mean " + " or ".join(f"'{match}'" for match in matches) + "?" if matches else ""


def or_listing(word: str, known: Iterable[str], label: str = "known") -> str:
    """did_you_mean, else every known name (`known: a, b`), else "": for a short list with no other place to see it."""
    names = list(known)
    return did_you_mean(word, names) or (f"{label}: {', '.join(names)}" if names else "")
