"""Text normalisation before matching: undo the usual tricks used to slip words past a filter.

Every transformed character keeps the index of the original character it came from, so a match in a
normalised view can be reported as a span of the text the user actually sent.

Two views are produced:

* ``plain``: NFKC, invisible characters removed, accents stripped, confusable homoglyphs folded to Latin,
  case folded, every other non-alphanumeric character turned into a space.
* ``joined``: the plain view, plus leetspeak symbols inside words mapped to letters (``$ex``, ``k!ll``),
  punctuation inside a word removed (``s.e.x``, ``p-o-r-n``) and runs of three or more single characters
  separated by spaces joined (``n u d e``).

Digits used as letters (``p0rn``, ``k1ll``) are handled by the term patterns (see ``_rules``), which accept
a digit wherever it commonly stands for a letter, in both views.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

from gen4sdk.errors import InvalidRequestError
from gen4sdk.types import MAX_PROMPT_CHARS

__all__ = ["NormalizedText", "View", "normalize", "semantic_text"]

# Characters that render as nothing (or only change direction) and are used to split words invisibly.
_INVISIBLE_RANGES = (
    (0x200B, 0x200F),  # zero-width space/joiners, LRM/RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_INVISIBLE_SINGLE = {0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0}

# Symbols that stand for letters inside a word. Digits are left to the patterns because "1" may be i or l.
_LEET_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l", "¢": "c", "§": "s"}
# For the sentence encoder, which sees one string, digits inside words are mapped to their usual letter.
_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}

_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


@dataclass(frozen=True)
class View:
    name: str
    text: str
    offsets: tuple[int, ...]  # offsets[i] = index in the original text of text[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the view slice [start, end)."""
        if end <= start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


@dataclass(frozen=True)
class NormalizedText:
    original: str
    plain: View
    joined: View
    warnings: tuple[str, ...]

    @property
    def views(self) -> tuple[View, View]:
        return (self.plain, self.joined)


@functools.lru_cache(maxsize=1)
def _confusables() -> dict[str, str]:
    """Map each non-ASCII character that looks like an ASCII letter or digit to that character.

    Built once from the Unicode confusables table shipped with ``confusable_homoglyphs``.
    """
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    table: dict[str, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or char.isascii():
            continue
        for entry in entries:
            c = entry.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalnum():
                table[char] = c.lower()
                break
    # Letters the table lists only through a multi-character sequence, or not at all, but which are common
    # stand-ins in evasion attempts.
    table.update({"ı": "i", "ſ": "s", "ƙ": "k", "ɑ": "a", "ɡ": "g", "ꞵ": "b", "ø": "o", "ð": "d", "þ": "p"})
    return table


def _is_invisible(cp: int) -> bool:
    if cp in _INVISIBLE_SINGLE:
        return True
    return any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES)


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    for s in _SCRIPTS:
        if name.startswith(s):
            return s
    return None


def _check_input(text: str, field: str) -> None:
    if not isinstance(text, str):
        raise InvalidRequestError(f"{field} must be a string, not {type(text).__name__}", field=field)
    if not text.strip():
        raise InvalidRequestError(f"{field} is empty", field=field)
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequestError(
            f"{field} has {len(text)} characters; the limit is {MAX_PROMPT_CHARS} (gen4sdk.types.MAX_PROMPT_CHARS)",
            field=field,
        )
    bad = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in "\t\n\r") or cat == "Cs" or ch in "\ufffe\uffff":
            raise InvalidRequestError(
                f"{field} contains a control or binary character U+{ord(ch):04X}; send text, not bytes",
                field=field,
            )
        if ch == "\ufffd":
            bad += 1
    if bad * 10 > len(text):
        raise InvalidRequestError(f"{field} looks like undecodable binary data (many U+FFFD)", field=field)


def _base(text: str) -> tuple[list[str], list[int], list[str]]:
    """NFKC, invisible characters dropped, accents stripped, homoglyphs folded, case folded."""
    table = _confusables()
    chars: list[str] = []
    offs: list[int] = []
    warnings: list[str] = []
    invisible = False
    for i, ch in enumerate(text):
        cp = ord(ch)
        if _is_invisible(cp):
            invisible = True
            continue
        if ch.isascii():
            chars.append(ch.lower())
            offs.append(i)
            continue
        folded = table.get(ch)
        if folded is None:
            nfkc = unicodedata.normalize("NFKC", ch)
            out = []
            for c in unicodedata.normalize("NFD", nfkc):
                if unicodedata.category(c) == "Mn":
                    continue
                out.append(table.get(c, c))
            folded = "".join(out).casefold()
        for c in folded:
            chars.append(c)
            offs.append(i)
    if invisible:
        warnings.append("text.invisible_characters")
    return chars, offs, warnings


def _mixed_script(text: str) -> bool:
    """True when one word mixes Latin with another alphabet (a homoglyph trick, not multilingual text)."""
    for word in re.findall(r"\w+", text):
        if word.isascii():
            continue
        scripts = {s for s in (_script(c) for c in word if c.isalpha()) if s}
        if "LATIN" in scripts and len(scripts) > 1:
            return True
    return False


@functools.lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Whole words of the bundled MiniLM WordPiece vocabulary (about 20k common English words), or empty."""
    try:
        from gen4sdk.policy._encoders import minilm_path

        lines = (minilm_path() / "vocab.txt").read_text("utf-8").splitlines()
    except Exception:  # noqa: BLE001 - optional: without it the plain heuristic applies
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 2)


def _split_leading_letter(run: str) -> bool:
    vocab = _vocabulary()
    if not vocab:
        return True
    if run in vocab:
        return False
    return run[1:] in vocab or run[0] == "a"


def _split_trailing_letter(run: str) -> bool:
    vocab = _vocabulary()
    return bool(vocab) and run not in vocab and run[:-1] in vocab


def _plain(chars: list[str], offs: list[int]) -> View:
    out = [c if c.isalnum() else " " for c in chars]
    return View("plain", "".join(out), tuple(offs))


def _joined(chars: list[str], offs: list[int]) -> View:
    # 1. words: maximal runs of non-space characters; inside a word, leet symbols next to an alphanumeric
    #    character become letters and any other punctuation is dropped.
    words: list[tuple[list[str], list[int]]] = []
    cur_c: list[str] = []
    cur_o: list[int] = []
    n = len(chars)
    for i, c in enumerate(chars):
        if c.isspace():
            if cur_c:
                words.append((cur_c, cur_o))
                cur_c, cur_o = [], []
            continue
        if c.isalnum():
            cur_c.append(c)
            cur_o.append(offs[i])
            continue
        sym = _LEET_SYMBOLS.get(c)
        if sym is not None:
            nxt = chars[i + 1] if i + 1 < n else " "
            prev_alnum = i > 0 and (chars[i - 1].isalnum() or chars[i - 1] in _LEET_SYMBOLS)
            # "!", "|" and "+" also end or separate phrases ("angry!!"); they stand for letters only when a
            # letter follows. "$" and "@" also at the end of a word ("a$$").
            if c in "!|+":
                is_letter = nxt.isalnum()
            else:
                is_letter = nxt.isalnum() or nxt in _LEET_SYMBOLS or prev_alnum
            if is_letter:
                cur_c.append(sym)
                cur_o.append(offs[i])
                continue
        # punctuation splits nothing inside a word (s.e.x), but separates words at the edges ("gore,")
        if cur_c and i + 1 < n and (chars[i + 1].isalnum() or chars[i + 1] in _LEET_SYMBOLS):
            continue
        if cur_c:
            words.append((cur_c, cur_o))
            cur_c, cur_o = [], []
    if cur_c:
        words.append((cur_c, cur_o))
    # 2. join runs of >= 3 one-character words ("n u d e", "k i l l").
    out_c: list[str] = []
    out_o: list[int] = []
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and len(words[j][0]) == 1:
            j += 1
        if j - i >= 3:
            # "a n a k e d": a leading "a" or "i" may be a word of its own ("a naked") or the word's first
            # letter ("i n t e r i o r"); a vocabulary decides when one is available.
            run = "".join(words[k][0][0] for k in range(i, j))
            if j - i >= 4 and run[0] in ("a", "i") and _split_leading_letter(run):
                out_c.extend([words[i][0][0], " "])
                out_o.extend([words[i][1][0], words[i][1][0]])
                i += 1
                run = run[1:]
            last = j
            if j - i >= 4 and run[-1] in ("a", "i") and _split_trailing_letter(run):
                last = j - 1  # "w i t h a" -> "with a"
            for k in range(i, last):
                out_c.extend(words[k][0])
                out_o.extend(words[k][1])
            out_c.append(" ")
            out_o.append(words[last - 1][1][-1])
            i = last
            continue
        out_c.extend(words[i][0])
        out_o.extend(words[i][1])
        out_c.append(" ")
        out_o.append(words[i][1][-1])
        i += 1
    return View("joined", "".join(out_c), tuple(out_o))


def normalize(text: str, *, field: str = "prompt") -> NormalizedText:
    """Validate ``text`` and build the matching views. Raises InvalidRequestError on empty, oversized or binary input."""
    _check_input(text, field)
    chars, offs, warnings = _base(text)
    if _mixed_script(text):
        warnings.append("text.mixed_script")
    if not "".join(chars).strip():
        raise InvalidRequestError(f"{field} has no visible text", field=field)
    plain = _plain(chars, offs)
    joined = _joined(chars, offs)
    return NormalizedText(text, plain, joined, tuple(warnings))


_WORD = re.compile(r"\S+")


def semantic_text(norm: NormalizedText) -> str:
    """One string for a sentence encoder: the joined view with digits used as letters mapped back."""

    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        if w.isdigit() or not any(c.isdigit() for c in w):
            return w
        # Only letter-digit mixes where a digit sits after a letter: "k1ll", "s3x", not "4k", "35mm", "1980s".
        if not re.search(r"[a-z][0-9]", w):
            return w
        return "".join(_LEET_DIGITS.get(c, c) for c in w)

    text = _WORD.sub(fix, norm.joined.text).strip()
    # prompts of emoji or symbols only: give the encoder the folded characters rather than nothing
    return text or "".join(norm.joined.text.split()) or norm.original.strip()
