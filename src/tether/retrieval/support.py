"""How well a span of text supports a sentence: word overlap and embedding similarity.

Lexical support is the share of the sentence's content words (lower-cased, stop words out,
compared on their first five letters so "measures" meets "measured") found in the span.
Semantic support is the cosine similarity of the two embeddings. Both run at answer time,
on every cited sentence. Numbers are checked apart: a sentence's figures ("80 degrees",
"two minutes", "3.5%") must all be in the sources, since a made-up number is the claim
that word overlap and similarity let through.
"""

from __future__ import annotations

import itertools
import re

_STOP = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers him his how i if in into is it its itself
just me more most my no nor not now of off on once only or other our ours out over own
same she should so some such than that the their theirs them then there these they this
those through to too under until up very was we were what when where which while who whom
why will with would you your yours
"""
STOP_WORDS = frozenset(_STOP.split())
WORD = re.compile(r"\w+")
# A sentence ends at . ! or ? followed by a space or the end; a dot inside a word or a
# number ("tether.index", "3.5") does not end it. A line break ends it only before a blank
# line, a list item, a heading, a quote or a table row: wrapped prose runs on.
SENTENCE = re.compile(
    r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?\"')\]])|\n(?!\s*\n|[ \t]*(?:[-*+#>|]|\d+[.)])\s))+"
    r"(?:[.!?]+[\"')\]]*|\n|$)"
)


NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WRITTEN = """zero one two three four five six seven eight nine ten eleven twelve thirteen
fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
NUMBER_WORDS = {word: str(value) for value, word in enumerate(_WRITTEN.split())}


def numbers(text: str) -> set[str]:
    """The figures in ``text``, digits or written out up to twenty ("two" is "2"),
    thousands separators dropped ("5,183" is "5183")."""
    found = {n.replace(",", "") for n in NUMBER.findall(text)}
    found |= {NUMBER_WORDS[w] for w in WORD.findall(text.lower()) if w in NUMBER_WORDS}
    return found


def stems(text: str) -> set[str]:
    return {
        word[:5]
        for word in WORD.findall(text.lower())
        if word not in STOP_WORDS and (len(word) > 2 or word.isdigit())
    }


def lexical_support(sentence: str, span: str) -> float:
    """The share of the sentence's content words that the span holds (0..1); a sentence
    with no content words has no support."""
    wanted = stems(sentence)
    if not wanted:
        return 0.0
    return len(wanted & stems(span)) / len(wanted)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, trimmed, empty ones left out."""
    spans = []
    for match in SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def best_span(sentence: str, text: str) -> tuple[int, int, float]:
    """The sentence of ``text`` (or two adjacent ones) that best supports ``sentence``:
    its offsets in ``text`` and its lexical support."""
    spans = sentences(text) or [(0, len(text))]
    best = (spans[0][0], spans[0][1], -1.0)
    windows = [*spans, *((a[0], b[1]) for a, b in itertools.pairwise(spans))]
    for start, end in windows:
        score = lexical_support(sentence, text[start:end])
        # Ties go to the shorter span: the narrower citation is the more useful one.
        if score > best[2] or (score == best[2] and end - start < best[1] - best[0]):
            best = (start, end, score)
    return best
