"""What agents are shown of what a customer wrote, on every channel: the text without
the characters that would make it show otherwise than it reads.

Control characters (but tab and newline) are not text; the bidirectional embeddings,
overrides and isolates (U+202A-U+202E, U+2066-U+2069) are invisible and reorder what
follows them, so that a message or a name shows in the agent console as something
other than what it is, and a name ending in U+202E showed the channel and time beside
it backwards. The right-to-left and left-to-right marks (U+200E, U+200F), which Arabic
and Hebrew writing needs and which reorder nothing around them, are kept.
"""
from __future__ import annotations

import re

_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown_text(text: str) -> str:
    """The text with its line ends as "\\n" and without the characters that do not show."""
    return _UNSHOWN.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def shown_line(text: str) -> str:
    """A name or a subject: one line, its runs of white space one space."""
    return " ".join(shown_text(text).split())
