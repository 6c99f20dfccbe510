"""Three-way merge of a section's text, for saves based on an old version.

`merge3(base, mine, theirs)` applies both sets of changes when they touch different
words, and answers None when they touch the same (or adjoining) words: the caller
then keeps both texts for a person to resolve. It never guesses: a merge it answers
contains every change of both sides, and nothing else.
"""

import difflib
import re

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _changes(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    """(start, end, replacement) for each change from `base` to `other`, in base order."""
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [(i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            if tag != "equal"]


def _clash(a: tuple[int, int, list[str]], b: tuple[int, int, list[str]]) -> bool:
    """Changes clash when their base ranges overlap or touch: an insertion at the edge
    of another change could belong before or after it, so it is not guessed."""
    if a == b:
        return False  # the same change made on both sides
    return a[0] <= b[1] and b[0] <= a[1]


def merge3(base: str, mine: str, theirs: str) -> str | None:
    if mine == theirs or theirs == base:
        return mine
    if mine == base:
        return theirs
    base_tokens = _tokens(base)
    ours, others = _changes(base_tokens, _tokens(mine)), _changes(base_tokens, _tokens(theirs))
    for a in ours:
        for b in others:
            if _clash(a, b):
                return None
    merged = list(base_tokens)
    applied = {(c[0], c[1], tuple(c[2])) for c in ours + others}
    for start, end, replacement in sorted(applied, key=lambda c: (c[0], c[1]), reverse=True):
        merged[start:end] = replacement
    return "".join(merged)
