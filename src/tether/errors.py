"""Every error tether raises, in one tree.

    TetherError
    ├── ConfigError                 a setting, id or file is wrong: fix it and run again
    │   ├── ModelNotFound           unknown provider, alias or model id
    │   ├── UnsupportedParameter    a parameter this provider or model cannot honour
    │   ├── ModelFileError          a GGUF file that is missing or fails its sha256 check
    │   ├── CassetteMiss            replay was asked for a call the cassette does not hold
    │   └── PromptError             a prompt file, its template or its variables are wrong
    ├── ProviderError               the provider (or the local runtime) failed a call
    │   ├── RateLimited             429: retryable, honours retry_after
    │   ├── Timeout                 no answer in time: retryable
    │   ├── Unavailable             5xx, overloaded, connection dropped, cut stream: retryable
    │   ├── BadRequest              the provider rejected the request: not retryable
    │   │   └── ContextTooLong      the prompt does not fit the model's context window
    │   ├── AuthError               missing or rejected credentials: not retryable
    │   └── MalformedResponse       an answer tether cannot read: not retryable, no fallback
    ├── OutputInvalid               the model's output did not parse or validate
    ├── Refused                     the model declined to answer
    ├── BudgetExceeded              a cost or token budget would be exceeded
    ├── ApprovalRequired            a risky action waits for a human
    ├── InputRejected               a guard rejected the input
    ├── DocumentError               a file that cannot be read as a document (skipped)
    ├── IndexMismatch               an index built another way (embedder, dimensions)
    └── StoreUnavailable            the index's database cannot be reached

Each provider adapter maps its SDK's exceptions onto this tree in one function, keeping the
original as ``__cause__``. An exception from tether's own code is not the provider's failure
and is never mapped (outside reading an answer, where it is a MalformedResponse): it surfaces
as itself. Every message says what to do next.
"""

from __future__ import annotations


class TetherError(Exception):
    """Base of every error tether raises."""


class ConfigError(TetherError):
    """A setting, model id or file is wrong; nothing was sent to a provider."""


class ModelNotFound(ConfigError):
    """The model id names no known provider, alias or endpoint."""


class UnsupportedParameter(ConfigError):
    """A request parameter that the chosen provider or model cannot honour."""


class ModelFileError(ConfigError):
    """A local model file is missing, unreadable or fails its checksum."""


class CassetteMiss(ConfigError):
    """Replay mode met a call that the cassette does not hold."""


class PromptError(ConfigError):
    """A prompt file is malformed, its template is unsafe or broken, or its variables are
    missing or mistyped; raised before any model call."""


class ProviderError(TetherError):
    """A call to a provider failed.

    ``retryable`` tells the retry middleware whether trying again can help; ``retry_after``
    carries the provider's own hint in seconds when it sent one.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class RateLimited(ProviderError):
    retryable = True


class Timeout(ProviderError):
    retryable = True


class Unavailable(ProviderError):
    retryable = True


class BadRequest(ProviderError):
    pass


class ContextTooLong(BadRequest):
    pass


class AuthError(ProviderError):
    pass


class MalformedResponse(ProviderError):
    """The provider answered, but with something tether cannot read: a changed payload, a
    server that only looks compatible, or a bug in tether. Asking again would cost the same
    and fail the same, so it is neither retried nor handed to a fallback (which would hide
    it). ``excerpt`` holds the start of what came back."""

    def __init__(
        self,
        message: str,
        *,
        excerpt: str = "",
        model: str | None = None,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, model=model, provider=provider, status=status, retry_after=retry_after
        )
        self.excerpt = excerpt


class OutputInvalid(TetherError):
    """The model's output did not parse or validate; carries what came back: the last text,
    every attempt's errors, and the usage of all attempts (a ``tether.types.Usage``)."""

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        errors: list[str] | None = None,
        usage: object | None = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.errors = errors or []
        self.usage = usage


class Refused(TetherError):
    """The model declined to answer."""


class BudgetExceeded(TetherError):
    """A cost or token budget would be exceeded."""


class ApprovalRequired(TetherError):
    """A risky action needs a human's approval before it runs."""


class InputRejected(TetherError):
    """A guard rejected the input."""


class DocumentError(TetherError):
    """A file that cannot be read as a document: empty, binary, too large, encrypted or
    malformed. Ingestion reports it with its path and goes on with the other files."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class IndexMismatch(TetherError):
    """An index was built with another embedder (or chunking) than the one asked for; its
    vectors would not compare. Open it with its own embedder, or re-embed it explicitly."""


class StoreUnavailable(TetherError):
    """The database holding an index cannot be reached; nothing was written."""


class DatasetError(TetherError):
    """A dataset could not be read: a missing file, a bad row (with its line), no samples."""
