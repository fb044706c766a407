"""Word-boundary term matching over the normalised views, tolerant of leetspeak digits and repeated letters.

A term is a word or phrase from a pack (``nude``, ``self harm``, ``decapitat*``). It compiles to a pattern
where each letter may repeat (``nuuude``) and may be written as the digit that usually stands for it
(``nud3``); words of a phrase may be separated by any spacing or none (``selfharm``); a plain term also
matches its plural; a trailing ``*`` matches any word ending. Matches must start and end at word boundaries,
so ``sex`` never matches inside ``Sussex`` and ``cunt`` never inside ``Scunthorpe``.

Rather than one huge alternation (tens of milliseconds per prompt in Python's ``re``), terms are bucketed by
a canonical prefix of their first word and only candidates of a token's bucket are tried at that token.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gen4sdk.policy._normalize import NormalizedText, View

__all__ = ["Hit", "Lexicon", "compile_term", "minor_age_hits"]

_CLASSES = {
    "a": "a4",
    "b": "b8",
    "e": "e3",
    "g": "g9",
    "i": "i1",
    "l": "l1i",
    "o": "o0",
    "s": "s5",
    "t": "t7",
}
_CANON = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "l": "i"}
)
_TOKEN = re.compile(r"\w+")
_TERM_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    label: str
    term: str
    start: int  # in the original text
    end: int
    view: str


def _canon(word: str) -> str:
    w = word.translate(_CANON)
    out: list[str] = []
    for c in w:
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _letter(c: str) -> str:
    cls = _CLASSES.get(c)
    return f"[{cls}]+" if cls else re.escape(c) + "+"


def compile_term(term: str) -> tuple[re.Pattern[str], str]:
    """Pattern for ``term`` (anchored at a token start) and the canonical form of its first word."""
    raw = term.strip().casefold()
    if not raw:
        raise ValueError("empty term")
    prefix = raw.endswith("*")
    raw = raw.rstrip("*")
    words = _TERM_WORD.findall(raw)
    if not words:
        raise ValueError(f"term {term!r} has no letters or digits")
    body = r"\s*".join("".join(_letter(c) for c in w) for w in words)
    tail = r"\w*" if prefix else r"(?:e?s)?(?!\w)"
    return re.compile(body + tail), _canon(words[0])


class Lexicon:
    """Terms grouped under labels; ``find`` returns every label whose terms occur in a normalised text.

    ``exceptions`` maps a label to phrases that cancel a hit of that label lying inside them
    (``breast cancer`` for ``breast``, ``photo shoot`` for ``shoot``).
    """

    def __init__(
        self, terms: Mapping[str, Iterable[str]], exceptions: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self._buckets: dict[str, list[tuple[str, str, re.Pattern[str]]]] = defaultdict(list)
        self.labels: set[str] = set()
        for label, items in terms.items():
            self.labels.add(label)
            for t in items:
                self._add(label, t)
        for label, items in (exceptions or {}).items():
            for t in items:
                self._add("!" + label, t)

    def _add(self, label: str, term: str) -> None:
        pattern, canon = compile_term(term)
        self._buckets[canon[:3]].append((label, term, pattern))

    def __len__(self) -> int:
        return sum(len(v) for v in self._buckets.values())

    def _find_view(self, view: View) -> list[tuple[str, str, int, int]]:
        text = view.text
        found: list[tuple[str, str, int, int]] = []
        buckets = self._buckets
        for m in _TOKEN.finditer(text):
            key = _canon(m.group(0))
            start = m.start()
            seen: set[str] = set()
            for k in (key[:3], key[:2], key[:1]):
                if k in seen or k not in buckets:
                    continue
                seen.add(k)
                for label, term, pattern in buckets[k]:
                    mm = pattern.match(text, start)
                    if mm is not None:
                        found.append((label, term, start, mm.end()))
        exc = [(lb[1:], s, e) for lb, _, s, e in found if lb.startswith("!")]
        out = []
        for label, term, s, e in found:
            if label.startswith("!"):
                continue
            if any(lb == label and es <= s and e <= ee for lb, es, ee in exc):
                continue
            out.append((label, term, s, e))
        return out

    def find(self, norm: NormalizedText) -> list[Hit]:
        hits: dict[tuple[str, int, int], Hit] = {}
        for view in norm.views:
            for label, term, s, e in self._find_view(view):
                os_, oe = view.span(s, e)
                # trailing spaces in the joined view map back to the last character; trim the span
                key = (label, os_, oe)
                if key not in hits:
                    hits[key] = Hit(label, term, os_, oe, view.name)
        return sorted(hits.values(), key=lambda h: (h.start, h.label))


_MINOR_AGE = re.compile(
    r"(?<!\w)(?:[0-9]|1[0-7])\s*(?:yo|y\s*o|yrs?\s*old|years?\s*old|year\s*old)(?!\w)"
    r"|(?<!\w)(?:aged?|age)\s*(?:[0-9]|1[0-7])(?!\w)"
)


def minor_age_hits(norm: NormalizedText) -> list[Hit]:
    """Stated ages under 18 ("12 yo", "15-year-old", "aged 9"): a built-in, not configurable by packs."""
    out: list[Hit] = []
    for view in (norm.plain,):
        for m in _MINOR_AGE.finditer(view.text):
            s, e = view.span(m.start(), m.end())
            out.append(Hit("group:@minor", "<age under 18>", s, e, view.name))
    return out


def words_between(text: str, a: Hit, b: Hit) -> int:
    """Number of words strictly between two hits of the original text (0 when they touch or overlap)."""
    first, second = (a, b) if a.start <= b.start else (b, a)
    if second.start <= first.end:
        return 0
    return len(text[first.end : second.start].split())


def any_within(
    text: str, groups: Sequence[Sequence[Hit]], window: int | None, *, ordered: bool = False
) -> list[Hit] | None:
    """One hit per group, each within ``window`` words of the previous one (and after it when ``ordered``)."""
    if any(not g for g in groups):
        return None

    def extend(chosen: list[Hit], rest: Sequence[Sequence[Hit]]) -> list[Hit] | None:
        if not rest:
            return chosen
        prev = chosen[-1]
        for h in rest[0]:
            if ordered and h.start < prev.end:
                continue
            if window is not None and words_between(text, prev, h) > window:
                continue
            if any(h.start < c.end and c.start < h.end for c in chosen):
                continue  # the same words cannot serve two items ("kill" as both act and target)
            found = extend([*chosen, h], rest[1:])
            if found is not None:
                return found
        return None

    for anchor in groups[0]:
        found = extend([anchor], groups[1:])
        if found is not None:
            return found
    return None
