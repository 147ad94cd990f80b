"""Readers for the recorded real-server traffic in ``tests/data/real_comfyui`` (test data only)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
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


def http_files() -> list[Path]:
    return sorted((REAL_COMFYUI / "http").glob("*.json"))


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


def exchanges() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in http_files():
        for exchange in json.loads(path.read_text()):
            yield path.name, exchange
