"""Did-you-mean for misspelled config keys, ranked word by word.

A plain ``difflib.get_close_matches`` over whole names is fooled by shared suffixes:
``populaton_size`` looks more like ``output_size`` (``_size``) than like
``initial_population``.  Here each word the user typed is matched against the words of
each key, weighted by its length, so the long, meaningful word counts for more than the
short, common one; the whole-name similarity only breaks near ties.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
# A typed word counts as one of a key's words from this similarity on (a typo or two).
WORD_CUTOFF = 0.75
# A key is suggested from this score on; keys within NEAR of the best are offered too.
CUTOFF = 0.6
NEAR = 0.05
_WHOLE_WEIGHT = 0.25


def _words(name: str) -> list[str]:
    return _WORD.findall(name.lower())


def _word_similarity(word: str, candidate: str) -> float:
    if len(word) >= 3 and candidate.startswith(word):
        return 0.9  # an abbreviation: "max_pop" for max_population
    return difflib.SequenceMatcher(None, word, candidate).ratio()


def score(typed: str, key: str) -> float:
    """How likely ``key`` is what ``typed`` meant, in [0, 1]."""
    words = _words(typed)
    letters = sum(len(w) for w in words)
    if not letters:
        return 0.0
    # A key's words and its name without separators (so "inputsize" finds input_size).
    targets = [*_words(key), "".join(_words(key))]
    covered = 0.0
    for word in words:
        best = max(_word_similarity(word, t) for t in targets)
        if best >= WORD_CUTOFF:
            covered += best * len(word)
    whole = difflib.SequenceMatcher(None, typed.lower(), key.lower()).ratio()
    return (1 - _WHOLE_WEIGHT) * covered / letters + _WHOLE_WEIGHT * whole


def close_keys(typed: str, keys: Iterable[str], n: int = 3) -> list[str]:
    """The keys ``typed`` most likely meant, best first (at most ``n``, maybe none)."""
    ranked = sorted(((score(typed, k), k) for k in keys), key=lambda sk: -sk[0])
    if not ranked or ranked[0][0] < CUTOFF:
        return []
    top = ranked[0][0]
    return [k for s, k in ranked[:n] if s >= max(CUTOFF, top - NEAR)]


def did_you_mean(typed: str, keys: Iterable[str]) -> str:
    """``unknown key; did you mean 'a' or 'b'?``, or just ``unknown key``."""
    close = close_keys(typed, keys)
    if not close:
        return "unknown key"
    quoted = [f"'{k}'" for k in close]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"unknown key; did you mean {options}?"
