"""What the gateway accepts in a caller's string: the blank rule, and how identity values are normalised.

Blank: a value is blank when nothing is left after removing whitespace, space separators (Zs, Zl, Zp),
format characters (Cf: U+200B ZERO WIDTH SPACE, U+FEFF, U+2060 WORD JOINER, bidi controls, …) and the
other characters that render as nothing (`BLANK_RENDERING`: the Hangul fillers U+115F, U+1160, U+3164,
U+FFA0 — category Lo, but drawn blank —, U+2800 BRAILLE PATTERN BLANK, variation selectors, the
combining grapheme joiner). Every string input must not be blank.

Identity: the fields that name whose credential it is are normalised — blank-rendering characters that
are not spaces removed, NFKC applied (full-width U+FF55 U+FF11 is `u1`), surrounding whitespace stripped — and the
normalised value is both the cache key's material and what is sent to the vendor, so two spellings can
never share a credential the vendor issued for only one of them. Other fields (a nickname, an avatar
URL) keep the caller's text: full-width characters are legitimate in a Chinese nickname.
"""

from __future__ import annotations

import functools
import unicodedata

_BLANK_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp"})
# Not Cf, yet drawn as nothing (Unicode's Default_Ignorable_Code_Point, plus the braille blank).
BLANK_RENDERING: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG / JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ / AA
    (0x180B, 0x180D),  # MONGOLIAN FREE VARIATION SELECTORS ONE to THREE
    (0x180F, 0x180F),  # MONGOLIAN FREE VARIATION SELECTOR FOUR
    (0x2800, 0x2800),  # BRAILLE PATTERN BLANK
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTORS
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xE0100, 0xE01EF),  # VARIATION SELECTORS SUPPLEMENT
)
_BLANK_RENDERING = frozenset(c for low, high in BLANK_RENDERING for c in range(low, high + 1))


def renders_blank(char: str) -> bool:
    """Whether one character is drawn as nothing or as space (see the module docstring)."""
    return (
        char.isspace()
        or unicodedata.category(char) in _BLANK_CATEGORIES
        or ord(char) in _BLANK_RENDERING
    )


def is_blank(value: str) -> bool:
    """Whether `value` is empty once whitespace and every blank-rendering character is removed."""
    if value.isascii():  # the usual case: ASCII has no format characters or fillers
        return not value.strip()
    return all(renders_blank(char) for char in value)


def normalise_identity(value: str) -> str:
    """The one spelling of an identity value (see the module docstring); idempotent."""
    if value.isascii():
        return value.strip()  # ASCII is its own NFKC form
    # Invisible characters go before NFKC, so that what they separated composes as it would have.
    visible = "".join(c for c in value if c.isspace() or not renders_blank(c))
    return unicodedata.normalize("NFKC", visible).strip()


@functools.cache
def blank_class_for_schema() -> str:
    """The blank-rendering characters of the Basic Multilingual Plane as the inside of a regex character
    class (`\\uXXXX` escapes, read alike by ECMA-262 and Python), for the published JSON Schema.

    Characters beyond U+FFFF (tags, the variation selectors supplement) are left out, because ECMA-262
    cannot name them in a class without the `u` flag: the published pattern is then a little more
    permissive than the validator, never stricter."""
    # Controls (Cc) are left to the pattern's own control ranges.
    blank = [
        c for c in range(0x10000) if renders_blank(chr(c)) and unicodedata.category(chr(c)) != "Cc"
    ]
    ranges: list[list[int]] = []
    for code in blank:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges
    )
