"""HTML: the page's main content as readable text, without its menus, scripts and footers.

The content is ``<main>`` when the page has one, else its outermost ``<article>`` elements,
else ``<body>``. Block elements become paragraphs separated by a blank line, whitespace
inside a paragraph collapses to single spaces, ``<br>`` breaks a line, table cells in a row
are joined with `` | `` and ``<pre>`` keeps its own layout. Parsing is lexbor's (through
selectolax), which, like a browser, reads whatever text malformed markup holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tether.retrieval.loaders.common import empty, missing_package, title_or_stem
from tether.retrieval.loaders.text import decode
from tether.retrieval.types import Document

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser, LexborNode

# fmt: off
_DROP = frozenset({
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe",
    "template", "head",
})
_BLOCKS = frozenset({
    "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "tr", "blockquote", "section",
    "article", "main", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot",
    "caption", "figure", "figcaption", "hr", "address", "details", "summary", "body", "html",
})
# fmt: on
_CELLS = frozenset({"td", "th"})
_LINE = "\x1e"  # <br>, kept apart from the source's own newlines, which are only whitespace
_CELL = "\x1f"  # the start of a table cell


def load_html(path: Path, data: bytes) -> Document:
    """One HTML page as a document; raises DocumentError when it holds no visible text."""
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError as exc:
        raise missing_package(path, "selectolax") from exc
    tree = LexborHTMLParser(decode(data, str(path)))
    title = _title(tree)
    text = ""
    for containers in (_content(tree), [tree.body or tree.root]):
        text = "\n\n".join(b for node in containers if node is not None for b in _blocks(node))
        if text:
            break
    if not text:
        raise empty(path, "no visible text in the HTML")
    return Document(source=str(path), text=text, title=title_or_stem(title, path))


def _title(tree: LexborHTMLParser) -> str | None:
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and node.text().strip():
            return node.text()
    return None


def _content(tree: LexborHTMLParser) -> list[LexborNode]:
    main = tree.css_first("main")
    if main is not None:
        return [main]
    return [a for a in tree.css("article") if not _inside_article(a)]


def _inside_article(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "article":
            return True
        parent = parent.parent
    return False


def _blocks(root: LexborNode) -> list[str]:
    """The paragraphs under ``root``, in document order (an explicit stack, so that deeply
    nested markup cannot exhaust Python's recursion limit)."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = _clean("".join(current))
        current.clear()
        if text:
            blocks.append(text)

    stack: list[LexborNode | None] = [root]  # None closes a block element
    while stack:
        node = stack.pop()
        if node is None:
            flush()
            continue
        tag = node.tag or ""
        if tag == "-text":
            current.append(node.text_content or "")
        elif tag == "br":
            current.append(_LINE)
        elif tag in _CELLS:
            current.append(_CELL)
            stack.extend(reversed(list(node.iter(include_text=True))))
        elif tag == "pre":
            flush()
            if node.text().strip():
                blocks.append(node.text().strip("\n").rstrip())
        elif tag in _BLOCKS or tag == "-document":
            flush()
            stack.append(None)
            stack.extend(reversed(list(node.iter(include_text=True))))
        elif tag in _DROP or tag.startswith("-"):  # comments and doctypes as well
            continue
        else:
            stack.extend(reversed(list(node.iter(include_text=True))))
    flush()
    return blocks


def _clean(raw: str) -> str:
    lines = []
    for line in raw.split(_LINE):
        cells = (" ".join(cell.split()) for cell in line.split(_CELL))
        lines.append(" | ".join(cell for cell in cells if cell))
    return "\n".join(line for line in lines if line)
