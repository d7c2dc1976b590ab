"""``tether index``: create an index, ingest files into it, search it, ask it, and look after
it (stats, reembed, rm). The work is the library's (tether.retrieval); this parses and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.cli.common import JsonFlag, ModelOption, err, out, parse_pairs, write

if TYPE_CHECKING:
    from tether.retrieval import Answer, Hit, Index
    from tether.retrieval.indexes import Reranker, Rewriter

app = typer.Typer(no_args_is_help=True, help="Indexes of your documents: ingest, search, ask.")

NameArgument = Annotated[str, typer.Argument(help="The index's name.")]
EmbedderOption = Annotated[
    str | None,
    typer.Option("-e", "--embedder", help="Embedder id (default local:minilm)."),
]
KOption = Annotated[int, typer.Option("-k", "--limit", help="How many chunks to return.")]
ModeOption = Annotated[str, typer.Option("--mode", help="lexical, dense or hybrid.")]
FilterOptions = Annotated[
    list[str] | None,
    typer.Option(
        "-f",
        "--filter",
        metavar="KEY=VALUE",
        help="Only documents whose metadata KEY is VALUE (source=GLOB for paths; repeatable).",
    ),
]
RerankOption = Annotated[
    str | None,
    typer.Option(
        "--rerank",
        metavar="RERANKER",
        help="Re-score the candidates: cross-encoder[:NAME] (the torch extra) or a model id "
        "(an LLM grades each).",
    ),
]
RewriteOption = Annotated[
    str | None,
    typer.Option(
        "--rewrite", metavar="MODEL", help="A model writes other phrasings, searched too."
    ),
]


def _reranker(spec: str | None) -> Reranker | None:
    from tether.retrieval.rerank import DEFAULT_CROSS_ENCODER, CrossEncoder, LLMReranker

    if spec is None:
        return None
    if spec == "cross-encoder" or spec.startswith("cross-encoder:"):
        return CrossEncoder(spec.partition(":")[2] or DEFAULT_CROSS_ENCODER)
    return LLMReranker(spec)


def _rewriter(model: str | None) -> Rewriter | None:
    from tether.retrieval.rewrite import QueryRewriter

    return QueryRewriter(model) if model else None


def _open(name: str, *, create: bool = False, embedder: str | None = None) -> Index:
    from tether.retrieval import index

    return index(name, create=create, embedder=embedder)


def _filters(pairs: list[str] | None) -> dict[str, Any] | None:
    return parse_pairs(pairs, "-f") or None


@app.command("create")
def create(
    name: NameArgument,
    embedder: EmbedderOption = None,
    size: Annotated[int, typer.Option(help="Chunk size in the embedder's tokens.")] = 200,
    overlap: Annotated[int, typer.Option(help="Tokens shared by consecutive chunks.")] = 30,
    strategy: Annotated[str, typer.Option(help="auto, recursive, markdown or sentence.")] = "auto",
    enrich: Annotated[
        str | None,
        typer.Option(metavar="MODEL", help="A model writes a sentence situating each chunk."),
    ] = None,
) -> None:
    """Create an empty index with its embedder and chunking."""
    from tether.retrieval import Chunking, index

    made = index(
        name,
        embedder=embedder,
        chunking=Chunking(size=size, overlap=overlap, strategy=strategy),  # type: ignore[arg-type]
        enrich=enrich,
    )
    out.print(
        f"created index [bold]{made.name}[/] ({made.info.embedder}, {made.info.dimensions} dims)"
    )


@app.command("ingest")
def ingest(
    name: NameArgument,
    path: Annotated[Path, typer.Argument(help="A file or folder.")],
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Glob of files to take (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Glob of files to skip (repeatable).")
    ] = None,
    text_field: Annotated[
        str | None, typer.Option(help="CSV/JSON: the field holding the text.")
    ] = None,
    max_bytes: Annotated[int, typer.Option(help="Skip files larger than this.")] = 50_000_000,
    embedder: EmbedderOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring a file or folder in: unchanged files are skipped, changed ones replaced, deleted
    ones removed. The index is created when it does not exist."""
    made = _open(name, create=True, embedder=embedder)
    report = made.ingest(
        path,
        include=include or ("**/*",),
        exclude=exclude or (),
        text_field=text_field,
        max_bytes=max_bytes,
        progress=not as_json,
    )
    if as_json:
        write(json.dumps(report.__dict__, indent=2, default=str) + "\n")
        return
    out.print(report.summary())
    for file, why in report.failed.items():
        err.print(f"skipped {file}: {why}", style="yellow", markup=False)
    for problem in report.problems[:20]:
        err.print(f"skipped {problem}", style="yellow", markup=False)


def _hit_line(number: int, hit: Hit) -> str:
    where = hit.source + (f" p.{hit.page}" if hit.page is not None else "")
    scores = " ".join(f"{k}={v:.3f}" for k, v in hit.scores.items())
    snippet = " ".join(hit.text.split())[:160]
    return f"[bold]{number}.[/] {where} [dim]{scores}[/]\n   {snippet}"


@app.command("search")
def search(
    name: NameArgument,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: KOption = 5,
    mode: ModeOption = "hybrid",
    filters: FilterOptions = None,
    rerank: RerankOption = None,
    rewrite: RewriteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Find the chunks that best match a query."""
    hits = _open(name).search(
        query,
        k=k,
        mode=mode,  # type: ignore[arg-type]
        filters=_filters(filters),
        rerank=_reranker(rerank),
        rewrite=_rewriter(rewrite),
    )
    if as_json:
        write(json.dumps([h.model_dump() for h in hits], indent=2) + "\n")
        return
    if not hits:
        out.print("no matches")
    for number, hit in enumerate(hits, start=1):
        out.print(_hit_line(number, hit), highlight=False)


def print_answer(answer: Answer) -> None:
    out.print(answer.text, markup=False)
    if answer.abstained:
        err.print(f"abstained: {answer.reason}", style="dim", markup=False)
        return
    seen: set[tuple[str, int]] = set()
    for number, sentence in enumerate(answer.sentences, start=1):
        for citation in sentence.citations:
            if (citation.source, citation.start) in seen:
                continue
            seen.add((citation.source, citation.start))
            page = f", page {citation.page}" if citation.page is not None else ""
            out.print(
                f"[dim]{number}. {citation.source}{page}, characters "
                f"{citation.start}-{citation.end} (support: words {citation.lexical:.2f}, "
                f"meaning {citation.semantic:.2f})[/]\n   “{citation.quote[:200]}”",
                highlight=False,
            )
    dropped = [s for s in answer.sentences if not s.supported]
    if dropped:
        err.print(f"{len(dropped)} unsupported sentence(s) left out", style="dim")


@app.command("ask")
def ask(
    name: NameArgument,
    question: Annotated[str, typer.Argument(help="The question.")],
    model: ModelOption = None,
    k: KOption = 4,
    filters: FilterOptions = None,
    rerank: RerankOption = None,
    rewrite: RewriteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from the index, every sentence cited and checked."""
    from tether.retrieval import ask as answer_question

    answer = answer_question(
        question,
        index=_open(name),
        model=model,
        k=k,
        filters=_filters(filters),
        rerank=_reranker(rerank),
        rewrite=_rewriter(rewrite),
    )
    if as_json:
        write(answer.model_dump_json(indent=2) + "\n")
        return
    print_answer(answer)


@app.command("stats")
def stats(name: NameArgument, as_json: JsonFlag = False) -> None:
    """Documents, chunks and files in an index, and how it embeds and cuts them."""
    data = _open(name).stats()
    if as_json:
        write(json.dumps(data, indent=2) + "\n")
        return
    for key, value in data.items():
        out.print(f"{key:>11}  {value}", markup=False)


@app.command("list")
def list_indexes(as_json: JsonFlag = False) -> None:
    """The indexes in this project."""
    from tether.config import load_settings
    from tether.retrieval.indexes import open_store

    store = open_store(load_settings())
    try:
        infos = store.list_indexes()
    finally:
        store.close()
    if as_json:
        write(json.dumps([i.model_dump() for i in infos], indent=2) + "\n")
        return
    if not infos:
        out.print("no indexes yet; `tether index ingest NAME FOLDER` makes one")
    for info in infos:
        out.print(f"{info.name}  [dim]{info.embedder}, {info.dimensions} dims[/]")


@app.command("reembed")
def reembed(
    name: NameArgument, embedder: Annotated[str, typer.Argument(help="Embedder id.")]
) -> None:
    """Embed every chunk again with another embedder; the index switches when all is done."""
    made = _open(name)
    made.reembed(embedder)
    out.print(f"{name} now embeds with {made.info.embedder}")


@app.command("rm")
def rm(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove an index and everything in it (the files it was built from stay)."""
    from tether.config import load_settings
    from tether.errors import ConfigError
    from tether.retrieval.indexes import open_store

    if not yes and not typer.confirm(f"remove index {name!r} and all its chunks?"):
        raise typer.Exit(1)
    store = open_store(load_settings())
    try:
        if not store.drop_index(name):
            raise ConfigError(f"no index named {name!r}; `tether index list` shows them")
    finally:
        store.close()
    out.print(f"removed index {name}")
