"""Ingestion: a folder (or file) into an index, incrementally and safely.

- Incremental: a file whose size and modification time are unchanged is skipped without
  being read; one whose bytes hash the same is skipped without being parsed; within a
  changed file (a JSONL of many rows) only the documents whose content changed are
  re-embedded; files gone from the folder, and rows gone from a file, are removed.
- Transactional per document: its old chunks go and its new ones come in one transaction,
  so a crash (even SIGKILL) leaves every document either as it was or as it is now. The
  file's own record is written after all its documents, so a re-run after a crash reads the
  file again and finishes what was left, with nothing counted twice.
- A file is read once; its hash and its documents come from the same bytes, so a file that
  changes while it is read is stored as it was read and picked up again on the next run.
- Files are read and parsed on a thread pool while the embedder runs (onnxruntime and the
  HTTP clients release the GIL); chunks are embedded in batches across documents.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import DocumentError
from tether.retrieval.chunking import chunk
from tether.retrieval.stores.base import FileState
from tether.retrieval.types import Chunk, Document

if TYPE_CHECKING:
    from tether.retrieval.indexes import Index

# Chunks embedded together: enough to keep the embedder's batches full.
EMBED_GROUP = 128
PARSE_AHEAD = 8


@dataclass
class IngestReport:
    """What an ingest did, file by file and document by document."""

    files_seen: int = 0
    files_skipped: int = 0  # unchanged since the last run
    documents_added: int = 0
    documents_replaced: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    duplicates: list[str] = field(default_factory=list)  # "SOURCE = ORIGINAL"
    chunks_added: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it was skipped
    problems: list[str] = field(default_factory=list)  # rows skipped inside files
    changed_while_read: list[str] = field(default_factory=list)
    contexts_written: int = 0  # situating sentences a model wrote (enrich=)
    contexts_cached: int = 0  # ... and found already written
    seconds: float = 0.0

    @property
    def documents_written(self) -> int:
        return self.documents_added + self.documents_replaced

    def summary(self) -> str:
        rate = self.documents_written / self.seconds if self.seconds else 0.0
        parts = [
            f"{self.files_seen} files ({self.files_skipped} unchanged)",
            f"{self.documents_added} documents added, {self.documents_replaced} replaced, "
            f"{self.documents_removed} removed, {self.documents_unchanged} unchanged",
            f"{self.chunks_added} chunks",
            f"{self.seconds:.1f} s ({rate:.1f} documents/s)",
        ]
        if self.contexts_written or self.contexts_cached:
            parts.append(
                f"{self.contexts_written} chunk contexts written ({self.contexts_cached} cached)"
            )
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicates skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} files failed")
        return "; ".join(parts)


@dataclass
class _Read:
    """One file as read on the pool: its state, its documents or why it failed."""

    path: str
    state: FileState | None = None
    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    unchanged: bool = False
    same_bytes: bool = False
    changed_while_read: bool = False


@dataclass
class _Pending:
    document: Document
    file: str | None
    chunks: list[Chunk]
    replaces: bool


class Ingestion:
    def __init__(
        self,
        index: Index,
        *,
        max_bytes: int,
        text_field: str | None = None,
        title_field: str | None = None,
        id_field: str | None = None,
        progress: bool = False,
    ) -> None:
        self.index = index
        self.store = index.store
        self.info = index.info
        self.max_bytes = max_bytes
        self.fields = {"text_field": text_field, "title_field": title_field, "id_field": id_field}
        self.progress = progress
        self.report = IngestReport()
        self._pending: list[_Pending] = []
        self._pending_chunks = 0

    def run(self, root: Path, include: Sequence[str], exclude: Sequence[str]) -> IngestReport:
        started = time.perf_counter()
        root = root.expanduser().resolve()
        if not root.exists():
            raise DocumentError(f"{root} does not exist; give a file or a folder to ingest")
        from tether.retrieval.loaders import walk

        paths = walk(root, include=include, exclude=exclude)
        self.report.files_seen = len(paths)
        self._remove_missing(root, {str(p) for p in paths})
        with _Progress(self.progress, len(paths)) as bar:
            for done, read in enumerate(self._read_all(paths), start=1):
                self._take(read)
                bar.advance(done, self.report)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def add(self, documents: Sequence[Document]) -> IngestReport:
        """Documents given in code (no file): replaced by source, never removed."""
        started = time.perf_counter()
        stored = {d.source: d.hash for d in self.store.documents(self.info)}
        for document in documents:
            self._document(document, None, stored)
        self._flush()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _remove_missing(self, root: Path, present: set[str]) -> None:
        prefix = str(root) if root.is_file() else str(root).rstrip("/") + "/"
        for path in self.store.files(self.info):
            if (path == str(root) or path.startswith(prefix)) and path not in present:
                self.report.documents_removed += self.store.delete_file(self.info, path)

    def _read_all(self, paths: list[Path]) -> Iterator[_Read]:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tether-ingest") as pool:
            queue: list[Future[_Read]] = []
            for path in paths:
                queue.append(pool.submit(self._read, path))
                if len(queue) >= PARSE_AHEAD:
                    yield queue.pop(0).result()
            for future in queue:
                yield future.result()

    def _read(self, path: Path) -> _Read:
        read = _Read(path=str(path))
        try:
            before = path.stat()
            known = self.store.file_state(self.info, read.path)
            if known and (known.size, known.mtime_ns) == (before.st_size, before.st_mtime_ns):
                read.unchanged = True
                return read
            if before.st_size > self.max_bytes:
                raise DocumentError(
                    f"{path} is {before.st_size:,} bytes, over the limit of "
                    f"{self.max_bytes:,}; raise max_bytes to ingest it",
                    source=read.path,
                )
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            read.state = FileState(size=len(data), mtime_ns=before.st_mtime_ns, hash=digest)
            after = path.stat()
            read.changed_while_read = (after.st_size, after.st_mtime_ns) != (
                before.st_size,
                before.st_mtime_ns,
            )
            if known and known.hash == digest:
                read.same_bytes = True
                return read
            from tether.retrieval.loaders import load_with_problems

            read.documents, read.problems = load_with_problems(
                path, data=data, max_bytes=self.max_bytes, **self.fields
            )
        except DocumentError as exc:
            read.error = str(exc)
        except OSError as exc:
            read.error = f"{path} could not be read ({exc.strerror or exc}); check its permissions"
        return read

    def _take(self, read: _Read) -> None:
        if read.unchanged:
            self.report.files_skipped += 1
            return
        if read.error is not None:
            self.report.failed[read.path] = read.error
            return
        assert read.state is not None
        if read.changed_while_read:
            self.report.changed_while_read.append(read.path)
        if read.same_bytes:  # touched, not changed: remember the new time and move on
            self.report.files_skipped += 1
            self.store.set_file(self.info, read.path, read.state)
            return
        self.report.problems.extend(read.problems)
        stored = {d.source: d.hash for d in self.store.documents(self.info, read.path)}
        sources = {d.source for d in read.documents}
        gone = [source for source in stored if source not in sources]
        if gone:
            self.report.documents_removed += self.store.delete_documents(self.info, gone)
        duplicate = False
        for document in read.documents:
            duplicate |= self._document(document, read.path, stored)
        self._flush()  # the file's documents are all written before the file is recorded
        if not duplicate:  # a duplicate is looked at again, in case its original goes
            self.store.set_file(self.info, read.path, read.state)

    def _document(self, document: Document, file: str | None, stored: dict[str, str]) -> bool:
        """Queue one document for embedding; True when it was skipped as a duplicate of a
        document from another file."""
        if stored.get(document.source) == document.hash:
            self.report.documents_unchanged += 1
            return False
        original = self.store.same_text(self.info, document.text)
        queued = next((p for p in self._pending if p.document.text == document.text), None)
        if original is None and queued is not None:
            original = queued.document.source
        if original is not None and original != document.source:
            self.report.duplicates.append(f"{document.source} = {original}")
            # An original in another file may go away; this file is then read again.
            return file is not None and original.partition("#")[0] != file

        chunks = chunk(document, self.info.chunking, self.index.embedder.count_tokens)
        if (enricher := self.index.enricher()) is not None:
            before = enricher.written, enricher.cached
            enricher.enrich(document, chunks)
            self.report.contexts_written += enricher.written - before[0]
            self.report.contexts_cached += enricher.cached - before[1]
        self._pending.append(_Pending(document, file, chunks, document.source in stored))
        self._pending_chunks += len(chunks)
        if self._pending_chunks >= EMBED_GROUP:
            self._flush()
        return False

    def _flush(self) -> None:
        if not self._pending:
            return
        texts = [c.searchable for p in self._pending for c in p.chunks]
        vectors = self.index.embedder.embed(texts)
        at = 0
        for pending in self._pending:
            part = vectors[at : at + len(pending.chunks)]
            at += len(pending.chunks)
            self.store.write_document(
                self.info, pending.document, pending.file, pending.chunks, part
            )
            if pending.replaces:
                self.report.documents_replaced += 1
            else:
                self.report.documents_added += 1
            self.report.chunks_added += len(pending.chunks)
        self._pending, self._pending_chunks = [], 0


class _Progress:
    """A Rich progress bar over files, with documents/s and chunks/s; silent when off."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.started = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("ingesting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rates]}"),
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("files", total=self.total, rates="")
        return self

    def advance(self, done: int, report: IngestReport) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rates = (
            f"{report.documents_written / elapsed:.1f} documents/s · "
            f"{report.chunks_added / elapsed:.1f} chunks/s"
        )
        self.bar.update(self.task, completed=done, rates=rates)

    def __exit__(self, *exc_info: object) -> None:
        if self.enabled:
            self.bar.__exit__(None, None, None)
