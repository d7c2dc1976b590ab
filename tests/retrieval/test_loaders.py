"""The document loaders: each format's happy path, and every kind of bad file."""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from tether.errors import DocumentError
from tether.retrieval.loaders import decode, load, load_with_problems, walk

SCIFACT = Path("/work/shared/data/scifact/corpus.jsonl")


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal real PDF with one Helvetica text line per line of each page's text."""
    count = len(pages)
    font = 3 + 2 * count
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(count)), count),
    ]
    for index, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        shown = " T* ".join(f"({line}) Tj" for line in escaped.split("\n"))
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, 4 + 2 * index)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    if title is not None:
        objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info %d 0 R" % len(objects) if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypted_pdf(user_password: str, algorithm: str = "RC4-128") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret text"]))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# Happy paths ------------------------------------------------------------------------------


def test_text_file_is_one_document_titled_by_its_stem(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "First line\r\nsecond line\rthird\n")
    [doc] = load(path)
    assert doc.text == "First line\nsecond line\nthird\n"
    assert doc.title == "notes"
    assert doc.source == str(path)
    assert doc.modified == path.stat().st_mtime


def test_given_bytes_are_parsed_instead_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "on disk")
    [doc] = load(path, data=b"as read")
    assert doc.text == "as read"
    assert doc.modified == path.stat().st_mtime
    [gone] = load(tmp_path / "gone.txt", data=b"no file")
    assert gone.modified is None


def test_markdown_keeps_its_source_and_takes_the_first_heading_as_title(tmp_path: Path) -> None:
    source = "```\n# not a title\n```\n\nIntro\n\n# Real Title #\n\n## Part\n\ntext\n"
    path = write(tmp_path, "guide.md", source)
    [doc] = load(path)
    assert doc.text == source
    assert doc.title == "Real Title"
    [plain] = load(write(tmp_path, "plain.markdown", "no heading here\n## only h2\n"))
    assert plain.title == "plain"


def test_html_keeps_the_main_content_and_drops_boilerplate(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>The Page</title><style>p{}</style></head>
    <body><nav><a href="/">Home</a> Menu</nav><header>Site banner</header>
    <main><h1>Heading</h1><p>First   paragraph
    with <b>bold</b> words.</p><script>alert('x')</script><div>Second<br>line</div>
    <table><tr><td>a</td><td>b</td></tr></table></main>
    <aside>Related links</aside><footer>Copyright 2026</footer></body></html>"""
    [doc] = load(write(tmp_path, "page.html", page))
    assert doc.title == "The Page"
    assert doc.text == "Heading\n\nFirst paragraph with bold words.\n\nSecond\nline\n\na | b"
    for boilerplate in ("Menu", "banner", "alert", "Related", "Copyright", "p{}"):
        assert boilerplate not in doc.text


def test_html_without_main_reads_the_body_and_titles_by_h1(tmp_path: Path) -> None:
    page = "<body><nav>Skip</nav><h1>Only Heading</h1><p>Body text.</p></body>"
    [doc] = load(write(tmp_path, "page.htm", page))
    assert doc.text == "Only Heading\n\nBody text."
    assert doc.title == "Only Heading"


def test_pdf_pages_record_their_offsets_into_the_text(tmp_path: Path) -> None:
    pages = ["Page one text", "Second page\nhas two lines", "Third (and last)"]
    path = write(tmp_path, "report.pdf", make_pdf(pages, title="Annual Report"))
    [doc] = load(path)
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert [doc.text[p.start : p.end] for p in doc.pages] == pages
    assert doc.text == "\n\n".join(pages)
    assert doc.page_at(doc.text.index("two lines")) == 2
    assert doc.title == "Annual Report"
    [untitled] = load(write(tmp_path, "memo.pdf", make_pdf(["x"])))
    assert untitled.title == "memo"


def test_docx_headings_become_markdown_headings(tmp_path: Path) -> None:
    import docx

    word = docx.Document()
    word.add_heading("Overview", level=1)
    word.add_paragraph("The first paragraph.")
    word.add_heading("Details", level=2)
    word.add_paragraph("")
    table = word.add_table(rows=2, cols=2)
    for (row, col), value in {(0, 0): "k", (0, 1): "v", (1, 0): "a", (1, 1): "1"}.items():
        table.cell(row, col).text = value
    path = tmp_path / "spec.docx"
    word.save(str(path))
    [doc] = load(path)
    assert doc.text == "# Overview\n\nThe first paragraph.\n\n## Details\n\nk | v\n\na | 1"
    assert doc.title == "Overview"
    word.core_properties.title = "Specification"
    word.save(str(path))
    assert load(path)[0].title == "Specification"


def test_csv_rows_become_documents_with_metadata(tmp_path: Path) -> None:
    rows = "id,title,body,category\n7,First,Alpha text,a\n,,,\n9,Second,Beta text,b\n"
    path = write(tmp_path, "items.csv", rows)
    docs = load(path, text_field="body", title_field="title", id_field="id")
    assert [d.source for d in docs] == [f"{path}#7", f"{path}#9"]
    assert [d.text for d in docs] == ["Alpha text", "Beta text"]
    assert docs[0].title == "First"
    assert docs[0].metadata == {"id": "7", "category": "a"}


def test_csv_without_text_field_renders_every_column(tmp_path: Path) -> None:
    path = write(tmp_path, "people.csv", "name;role\nAda;engineer\nAlan;mathematician\n")
    docs = load(path)
    assert [d.source for d in docs] == [f"{path}#1", f"{path}#2"]
    assert docs[0].text == "name: Ada\nrole: engineer"
    assert docs[1].metadata == {"name": "Alan", "role": "mathematician"}


def test_scifact_rows_are_sourced_by_their_ids(tmp_path: Path) -> None:
    if SCIFACT.exists():
        with SCIFACT.open(encoding="utf-8") as corpus:
            lines = [next(corpus) for _ in range(3)]
    else:
        rows = [{"_id": str(n), "title": f"T{n}", "text": f"Text {n}."} for n in (4983, 5836, 7)]
        lines = [json.dumps({**row, "metadata": {}}) + "\n" for row in rows]
    path = write(tmp_path, "corpus.jsonl", "".join(lines))
    docs, problems = load_with_problems(path)
    expected = [json.loads(line) for line in lines]
    assert problems == []
    assert [d.source for d in docs] == [f"{path}#{row['_id']}" for row in expected]
    assert [d.title for d in docs] == [row["title"] for row in expected]
    assert [d.text for d in docs] == [row["text"] for row in expected]
    assert docs[0].metadata == {"_id": expected[0]["_id"]}


def test_json_list_and_single_object(tmp_path: Path) -> None:
    items = [{"id": 1, "content": "one", "lang": "en"}, {"id": 2, "content": "two"}]
    path = write(tmp_path, "items.json", json.dumps(items))
    docs = load(path)
    assert [(d.source, d.text) for d in docs] == [(f"{path}#1", "one"), (f"{path}#2", "two")]
    assert docs[0].metadata == {"id": 1, "lang": "en"}
    single = write(tmp_path, "one.json", json.dumps({"title": "Solo", "abstract": "Words."}))
    [doc] = load(single)
    assert (doc.source, doc.title, doc.text) == (str(single), "Solo", "Words.")


# Bad files -------------------------------------------------------------------------------


def test_empty_and_whitespace_files_are_errors(tmp_path: Path) -> None:
    for name, content in [("empty.txt", b""), ("blank.md", b"  \n\t\n"), ("e.pdf", b"")]:
        with pytest.raises(DocumentError, match=r"empty") as caught:
            load(write(tmp_path, name, content))
        assert caught.value.source == str(tmp_path / name)


@pytest.mark.parametrize("name", ["blob.txt", "blob.bin", "noext"])
def test_binary_files_are_errors(tmp_path: Path, name: str) -> None:
    data = bytes(range(256)) * 4 + os.urandom(512) + b"\x00"
    with pytest.raises(DocumentError, match=r"binary|not text") as caught:
        load(write(tmp_path, name, data))
    if name != "blob.txt":
        assert ".pdf" in str(caught.value)  # names the supported suffixes


def test_unknown_suffix_that_is_text_loads_as_text(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "config.ini", "[section]\nkey = value\n"))
    assert doc.text == "[section]\nkey = value\n"


def test_file_over_max_bytes_names_size_limit_and_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", "x" * 2000)
    for data in (None, path.read_bytes()):
        with pytest.raises(DocumentError, match=r"2,000 bytes.*1,000.*max_bytes"):
            load(path, data=data, max_bytes=1000)


def test_password_protected_pdf_says_to_decrypt_it(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.pdf", encrypted_pdf("secret"))
    with pytest.raises(DocumentError, match=r"password-protected.*qpdf --decrypt"):
        load(path)


def test_aes_pdfs_load_with_an_empty_password_and_refuse_with_a_real_one(
    tmp_path: Path,
) -> None:
    [doc] = load(write(tmp_path, "aes.pdf", encrypted_pdf("", algorithm="AES-256")))
    assert doc.text == "Secret text"
    with pytest.raises(DocumentError, match=r"password-protected.*qpdf --decrypt"):
        load(write(tmp_path, "aes-locked.pdf", encrypted_pdf("secret", algorithm="AES-128")))


def test_pdf_encrypted_with_an_empty_user_password_loads(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "open.pdf", encrypted_pdf("")))
    assert doc.text == "Secret text"


@pytest.mark.parametrize(
    "data",
    [make_pdf(["Truncated page"])[:120], b"%PDF-1.4\n" + os.urandom(400), b"not a pdf at all"],
    ids=["truncated", "garbage-after-header", "garbage"],
)
def test_malformed_pdf_is_an_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DocumentError, match=r"malformed PDF|no pages"):
        load(write(tmp_path, "bad.pdf", data))


def test_pdf_without_a_text_layer_says_to_ocr_it(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"no text layer.*OCR"):
        load(write(tmp_path, "scan.pdf", make_pdf(["   "])))


def test_missing_library_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` fail
    with pytest.raises(DocumentError, match=r"pip install pypdf"):
        load(write(tmp_path, "a.pdf", make_pdf(["x"])))


def test_malformed_html_still_yields_its_text(tmp_path: Path) -> None:
    page = "<html><body><div><p>Unclosed <b>bold <i>para<p>Next one</div></span>>< &amp; more"
    [doc] = load(write(tmp_path, "broken.html", page))
    assert doc.text == "Unclosed bold para\n\nNext one\n\n>< & more"


def test_html_with_only_scripts_is_empty(tmp_path: Path) -> None:
    page = "<html><head><script>var a = 1;</script></head><body><script>go()</script></body>"
    with pytest.raises(DocumentError, match=r"empty"):
        load(write(tmp_path, "app.html", page))


def test_ole_docx_is_password_protected_or_legacy(tmp_path: Path) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    with pytest.raises(DocumentError, match=r"password-protected or legacy .doc"):
        load(write(tmp_path, "locked.docx", data))


def test_docx_that_is_not_a_word_zip_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"not a readable .docx"):
        load(write(tmp_path, "text.docx", "just text"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "no word/document.xml here")
    with pytest.raises(DocumentError, match=r"not a readable .docx"):
        load(write(tmp_path, "other.docx", archive.getvalue()))


def test_cp1252_text_decodes(tmp_path: Path) -> None:
    text = "café “quoted” – naïve"
    [doc] = load(write(tmp_path, "legacy.txt", text.encode("cp1252")))
    assert doc.text == text


def test_unicode_byte_order_marks_are_honoured(tmp_path: Path) -> None:
    text = "Grüße, 世界\n"
    assert load(write(tmp_path, "u16.txt", text.encode("utf-16")))[0].text == text
    assert load(write(tmp_path, "u8.txt", text.encode("utf-8-sig")))[0].text == text
    assert decode(codecs.BOM_UTF16_BE + "a\r\nb".encode("utf-16-be")) == "a\nb"


def test_mostly_utf8_with_one_invalid_byte_stays_utf8(tmp_path: Path) -> None:
    data = "Crème brûlée, déjà vu ".encode() + b"\xff" + " — fin".encode()
    [doc] = load(write(tmp_path, "mixed.txt", data))
    assert doc.text == "Crème brûlée, déjà vu \ufffd — fin"


def test_jsonl_skips_malformed_lines_and_names_them(tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "text": "first"}',
        "",
        '{"id": "b", "text": ',
        '{"id": "c", "text": ""}',
        '{"id": "a", "text": "again"}',
        '{"id": "d", "text": "last"}',
    ]
    path = write(tmp_path, "rows.ndjson", "\n".join(lines) + "\n")
    docs, problems = load_with_problems(path)
    assert [d.source for d in docs] == [f"{path}#a", f"{path}#d"]
    assert len(problems) == 3
    assert problems[0].startswith(f"{path} line 3: not valid JSON")
    assert problems[1].startswith(f"{path} line 4:") and "'text'" in problems[1]
    assert problems[2].startswith(f"{path} line 5:") and "repeats" in problems[2]
    assert load(path) == docs


def test_jsonl_with_no_valid_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"line 1: not valid JSON"):
        load(write(tmp_path, "bad.jsonl", "{nope\n[1,\n"))


def test_json_without_a_text_field_names_its_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.json", json.dumps([{"name": "x", "summary": "y"}]))
    with pytest.raises(DocumentError, match=r"keys: name, summary.*text_field"):
        load(path)
    [doc] = load(path, text_field="summary", title_field="name")
    assert (doc.text, doc.title, doc.metadata) == ("y", "x", {})


def test_invalid_json_names_the_place(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"not valid JSON.*line 2 column"):
        load(write(tmp_path, "broken.json", '[{"text": "a"},\n oops]'))


def test_csv_missing_text_field_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "id,title,body\n1,a,b\n")
    with pytest.raises(DocumentError, match=r"no column 'text'; its columns are id, title, body"):
        load(path, text_field="text")


# Walking folders ---------------------------------------------------------------------------


def tree(root: Path, names: list[str]) -> None:
    for name in names:
        write(root, name, "x")


def walked(root: Path, include: tuple[str, ...] = ("**/*",), exclude: tuple[str, ...] = ()) -> str:
    return " ".join(
        p.relative_to(root).as_posix() for p in walk(root, include=include, exclude=exclude)
    )


def test_walk_includes_excludes_and_skips_hidden(tmp_path: Path) -> None:
    visible = "a.md b.txt docs/c.md docs/deep/d.md docs/drafts/e.md"
    hidden = ".hidden.md .git/f.md node_modules/pkg/g.md __pycache__/h.md docs/.cache/i.md"
    tree(tmp_path, f"{visible} {hidden}".split())
    assert walked(tmp_path) == visible
    assert walked(tmp_path, ("**/*.md",), ("docs/drafts/**",)) == "a.md docs/c.md docs/deep/d.md"
    assert walked(tmp_path, ("*.md",), ("deep",)) == "a.md docs/c.md docs/drafts/e.md"
    assert walked(tmp_path, ("docs/*.md",)) == "docs/c.md"
    assert (
        walked(tmp_path, ("**/.*.md", "node_modules/**/*.md")) == ".hidden.md node_modules/pkg/g.md"
    )
    assert walked(tmp_path, ("d?cs/[cd].md", "docs/[!c]*/*.md")) == (
        "docs/c.md docs/deep/d.md docs/drafts/e.md"
    )
    assert walk(tmp_path / "a.md") == [tmp_path / "a.md"]


def test_walk_follows_links_to_files_but_not_loops(tmp_path: Path) -> None:
    tree(tmp_path, ["real/a.txt"])
    (tmp_path / "real" / "link.txt").symlink_to(tmp_path / "real" / "a.txt")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "broken.txt").symlink_to(tmp_path / "nowhere")
    found = walk(tmp_path / "real")
    assert found == [tmp_path / "real" / "a.txt", tmp_path / "real" / "link.txt"]


def test_walk_of_a_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"does not exist"):
        walk(tmp_path / "missing")


def test_aes_pdf_without_cryptography_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pypdf
    from pypdf.errors import DependencyError

    def needs_cryptography(*args: object, **kwargs: object) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(pypdf, "PdfReader", needs_cryptography)
    with pytest.raises(DocumentError, match=r"AES-encrypted.*pip install cryptography"):
        load(write(tmp_path, "aes.pdf", make_pdf(["x"])))


def test_loaders_import_their_libraries_lazily() -> None:
    import subprocess

    code = (
        "import sys, tether.retrieval.loaders; "
        "print(sorted({'pypdf', 'docx', 'selectolax'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
