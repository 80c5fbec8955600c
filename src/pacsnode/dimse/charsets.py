"""The character set of a response (PS3.5 6.1, PS3.4 C.4.1.1.3.1).

A C-FIND response is answered in the character set of the request if that can hold every
returned value; otherwise in UTF-8 (ISO_IR 192), which holds any. Nothing is ever replaced
by ``?`` or dropped. The choice is written in Specific Character Set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydicom.charset import convert_encodings

UTF8 = "ISO_IR 192"


def _python_encodings(specific_character_set: Sequence[str]) -> list[str]:
    terms = [t.strip() for t in specific_character_set] or [""]
    try:
        encodings = list(convert_encodings(terms))
    except Exception:  # an unknown term: pydicom warns or raises depending on settings
        return []
    # No value (or an empty first value) is the default repertoire, ISO 646: ASCII, not the
    # Latin-1 pydicom reads it as for leniency.
    if not terms[0]:
        encodings[0] = "ascii"
    return encodings


def can_hold(specific_character_set: Sequence[str], texts: Iterable[str]) -> bool:
    """Whether every character of ``texts`` can be written in ``specific_character_set``
    (its values; empty = the default repertoire). With several terms (ISO 2022 code
    extensions) each character needs one term that can encode it."""
    encodings = _python_encodings(specific_character_set)
    if not encodings:
        return False
    for text in texts:
        if text.isascii():
            continue
        if len(encodings) == 1:
            try:
                text.encode(encodings[0])
            except (UnicodeError, LookupError):
                return False
            continue
        for ch in set(text):
            if ch.isascii():
                continue
            if not any(_encodes(ch, enc) for enc in encodings):
                return False
    return True


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except (UnicodeError, LookupError):
        return False
    return True


def choose(requested: Sequence[str], texts: Iterable[str]) -> list[str]:
    """The Specific Character Set values to answer with: the request's if it holds every
    value, else UTF-8."""
    texts = list(texts)
    if can_hold(requested, texts):
        return list(requested)
    return [UTF8]
