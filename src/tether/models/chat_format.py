"""The Chat Completions message and tool format: OpenAI's, and llama.cpp's too.

Both the ``openai`` provider and the ``local`` one (llama-cpp-python's chat API) speak it,
so the mapping from tether's types lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.errors import UnsupportedParameter
from tether.types import (
    AudioPart,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    ToolResultPart,
    ToolSpec,
)


def chat_messages(
    messages: Sequence[Message],
    *,
    empty_assistant: str | None = None,
    developer: str = "system",
) -> list[dict[str, Any]]:
    """Messages in the Chat Completions shape; each tool result becomes a "tool" message.

    ``empty_assistant`` is the content of an assistant turn that only calls tools: OpenAI
    wants null; a chat template would print "None", so llama.cpp gets "". ``developer`` is
    the role a developer message takes: OpenAI's own "developer", or "system" for servers
    and chat templates that know only that.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.extend(
                {"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
                for p in message.content
                if isinstance(p, ToolResultPart)
            )
        elif message.role == "assistant":
            item: dict[str, Any] = {"role": "assistant", "content": message.text or empty_assistant}
            if calls := message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in calls
                ]
            out.append(item)
        else:
            role = developer if message.role == "developer" else message.role
            out.append({"role": role, "content": _content(message)})
    return out


_MEDIA = (ImagePart, DocumentPart, AudioPart)


def _content(message: Message) -> str | list[dict[str, Any]]:
    if not any(isinstance(p, _MEDIA) for p in message.content):
        return message.text
    content: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.url or f"data:{part.media_type};base64,{part.data}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif isinstance(part, DocumentPart):
            content.append({"type": "file", "file": _file(part)})
        elif isinstance(part, AudioPart):
            audio = {"data": part.data, "format": part.format}
            content.append({"type": "input_audio", "input_audio": audio})
    return content


def _file(part: DocumentPart) -> dict[str, str]:
    """A document as a Chat Completions file: inline data (as a data URL) or an uploaded id.
    Other sources never get here: the capabilities refuse them first."""
    name = part.filename
    if part.file_id is not None:
        return {"file_id": part.file_id} | ({"filename": name} if name else {})
    if not name:
        raise UnsupportedParameter(
            "OpenAI takes a document sent as data only with a file name; set "
            "DocumentPart(filename='report.pdf', ...)"
        )
    return {"file_data": f"data:{part.media_type};base64,{part.data}", "filename": name}


def tool_definitions(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters}
            | ({"strict": t.strict} if t.strict is not None else {}),
        }
        for t in tools
    ]


def tool_choice(choice: str) -> str | dict[str, Any]:
    """ "auto", "none" and "required" as they are; any other value names one tool."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}
