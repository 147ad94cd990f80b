"""Readers for the recorded real-server traffic in ``tests/data/real_comfyui`` (test data only).

WebSocket captures are read frame by frame (:func:`received_frames`); HTTP exchanges come as
:class:`Exchange` records whose :attr:`Exchange.body` re-encodes the recorded JSON with
``json.dumps`` defaults, which is exactly what the server's ``web.json_response`` sent.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REAL_COMFYUI = Path(__file__).resolve().parent / "data" / "real_comfyui"


@dataclass(frozen=True)
class Frame:
    """One frame a client received, as recorded."""

    file: str
    gseq: int
    kind: str  # "text" or "binary"
    payload: bytes  # the wire bytes (text frames re-encoded as the server does)
    record: dict[str, Any]

    @property
    def json(self) -> dict[str, Any]:
        return self.record["json"]  # type: ignore[no-any-return]


def ws_files() -> list[Path]:
    return sorted((REAL_COMFYUI / "ws").glob("*.jsonl"))


def received_frames(path: Path) -> Iterator[Frame | None]:
    """Yield each received frame of one capture file; ``None`` marks a (re)connect."""
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["direction"] == "meta" and record.get("event") == "connect":
            yield None
        if record["direction"] != "in":
            continue
        if record["frame"] == "text":
            # json.dumps with default separators is exactly what the server's aiohttp sends.
            payload = json.dumps(record["json"]).encode()
        else:
            payload = base64.b64decode(record["b64"])
        yield Frame(path.name, record["gseq"], record["frame"], payload, record)


def all_received_frames() -> list[Frame]:
    return [frame for path in ws_files() for frame in received_frames(path) if frame is not None]


# --------------------------------------------------------------------------- HTTP

HTTP = REAL_COMFYUI / "http"


@dataclass(frozen=True)
class Exchange:
    file: str
    index: int
    label: str
    method: str
    path: str
    status: int
    json: Any
    has_json: bool
    content_type: str

    @property
    def route(self) -> str:
        """The path without its ``/api`` prefix(es): ``/api/api/jobs`` → ``/jobs``."""
        return re.sub(r"^(/api)+(?=/)", "", self.path)

    @property
    def body(self) -> bytes:
        """The wire form of the JSON body."""
        return json.dumps(self.json).encode()

    @property
    def id(self) -> str:
        return f"{self.file[:2]}:{self.index}:{self.method} {self.path}"


@cache
def exchanges() -> tuple[Exchange, ...]:
    """Every recorded exchange, file by file, in order."""
    found: list[Exchange] = []
    for file in sorted(HTTP.glob("*.json")):
        for index, raw in enumerate(json.loads(file.read_text())):
            response = raw["response"]
            found.append(
                Exchange(
                    file=file.name,
                    index=index,
                    label=raw["label"],
                    method=raw["request"]["method"],
                    path=raw["request"]["path"],
                    status=response["status"],
                    json=response.get("json"),
                    has_json="json" in response,
                    content_type=response.get("headers", {}).get("Content-Type", ""),
                )
            )
    return tuple(found)


def json_exchanges() -> list[Exchange]:
    """The exchanges whose response body was JSON and was recorded in full."""
    return [ex for ex in exchanges() if ex.has_json]


def json_typed_exchanges() -> list[Exchange]:
    """The exchanges whose response was JSON, including the ones recorded by size only."""
    return [ex for ex in exchanges() if ex.has_json or "application/json" in ex.content_type]


def find(file_prefix: str, label: str) -> Exchange:
    """The one exchange of the file starting with ``file_prefix`` whose label is ``label``."""
    matches = [ex for ex in exchanges() if ex.file.startswith(file_prefix) and ex.label == label]
    assert len(matches) == 1, (file_prefix, label, len(matches))
    return matches[0]


def matching(method: str, route: str, status: int = 200) -> list[Exchange]:
    """Every JSON exchange of ``method`` whose route fully matches the regex ``route``."""
    return [
        ex
        for ex in json_exchanges()
        if ex.method == method and ex.status == status and re.fullmatch(route, ex.route)
    ]
