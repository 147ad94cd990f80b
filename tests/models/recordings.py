"""Recorded real-server HTTP exchanges (``tests/data/real_comfyui/http``), ready to decode.

The recordings keep each JSON body parsed; :attr:`Exchange.body` re-encodes it with
``json.dumps`` defaults, which is exactly what the server's ``web.json_response`` sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HTTP = Path(__file__).resolve().parent.parent / "data" / "real_comfyui" / "http"


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
