"""Every recorded JSON response decodes through its model, or is listed as modelless on purpose."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from comfy_async.events import FeatureFlags
from comfy_async.models import (
    PromptRejection,
    PromptResponse,
    decode_cancel_result,
    decode_history,
    decode_job,
    decode_job_list,
    decode_model_files,
    decode_model_folders,
    decode_object_info,
    decode_prompt_info,
    decode_queue,
    decode_server_logs,
    decode_system_stats,
    decode_upload_result,
    decode_userdata_entries,
    decode_userdata_files,
    decode_users,
)
from tests.recordings import Exchange, json_exchanges, json_typed_exchanges

if TYPE_CHECKING:
    from collections.abc import Callable

OK = range(200, 300)
ERROR = range(400, 600)

_PROMPT_RESPONSE = msgspec.json.Decoder(PromptResponse)
_PROMPT_REJECTION = msgspec.json.Decoder(PromptRejection)
_FLAGS = msgspec.json.Decoder(dict[str, Any])


def _feature_flags(buf: bytes) -> FeatureFlags:
    return FeatureFlags(flags=_FLAGS.decode(buf))


@dataclass(frozen=True)
class Route:
    method: str | None
    pattern: str
    statuses: range | frozenset[int]
    #: the decode entry point, or why the route has no model here
    target: Callable[[bytes], object] | str

    def matches(self, ex: Exchange) -> bool:
        return (
            (self.method is None or self.method == ex.method)
            and ex.status in self.statuses
            and re.fullmatch(self.pattern, ex.route) is not None
        )


ROUTES: list[Route] = [
    Route("POST", "/prompt", OK, _PROMPT_RESPONSE.decode),
    Route("POST", "/prompt", frozenset({400}), _PROMPT_REJECTION.decode),
    Route("GET", "/prompt", OK, decode_prompt_info),
    Route("GET", "/queue", OK, decode_queue),
    Route("GET", "/history(/[^/]+)?", OK, decode_history),
    Route("GET", "/jobs", OK, decode_job_list),
    Route("GET", "/jobs/[^/]+", OK, decode_job),
    Route("POST", "/jobs/cancel|/jobs/[^/]+/cancel", OK, decode_cancel_result),
    Route("POST", "/upload/(image|mask)", OK, decode_upload_result),
    Route("GET", "/object_info(/[^/]+)?", OK, decode_object_info),
    Route("GET", "/system_stats", OK, decode_system_stats),
    Route("GET", "/internal/logs/raw", OK, decode_server_logs),
    Route("GET", "/models", OK, decode_model_folders),
    Route("GET", "/models/[^/]+", OK, decode_model_files),
    Route("GET", "/experiment/models", OK, decode_model_folders),
    Route("GET", "/experiment/models/[^/]+", OK, decode_model_files),
    Route("GET", "/users", OK, decode_users),
    Route("GET", "/userdata", OK, decode_userdata_files),
    Route("GET", "/v2/userdata", OK, decode_userdata_entries),
    Route("GET", "/features", OK, _feature_flags),
    # ---- no model on purpose
    Route("GET", "/embeddings|/extensions", OK, "a plain list[str]"),
    Route("GET", "/internal/files/[^/]+", OK, "a plain list of 'name [type]' strings"),
    Route("GET", "/internal/folder_paths", OK, "a plain dict[str, list[str]]"),
    Route("GET", "/settings(/[^/]+)?", OK, "user settings are free-form JSON"),
    Route("GET", "/workflow_templates|/i18n", OK, "free-form data contributed by custom nodes"),
    Route("GET", "/global_subgraphs(/[^/]+)?", OK, "frontend blueprint data, passed through"),
    Route("GET", "/node_replacements", OK, "frontend data, passed through"),
    Route(None, ".*", ERROR, "error bodies are read by the HTTP layer's error mapping"),
]


def route_of(ex: Exchange) -> Route | None:
    return next((route for route in ROUTES if route.matches(ex)), None)


def test_every_recorded_json_route_is_decoded_or_listed() -> None:
    # bodies logged by size only (/object_info, /internal/logs/raw…) count too
    unmatched = [ex.id for ex in json_typed_exchanges() if route_of(ex) is None]
    assert unmatched == []


def test_the_recordings_cover_the_modelled_routes() -> None:
    used = {id(route_of(ex)) for ex in json_typed_exchanges()}
    # routes recorded only as errors (GET /userdata: 400/404 text)
    not_recorded = {"/userdata"}
    idle = [r.pattern for r in ROUTES if id(r) not in used and r.pattern not in not_recorded]
    assert idle == []


_DECODED = [ex for ex in json_exchanges() if callable(getattr(route_of(ex), "target", None))]


@pytest.mark.parametrize("ex", _DECODED, ids=[ex.id for ex in _DECODED])
def test_recorded_body_decodes(ex: Exchange) -> None:
    route = route_of(ex)
    assert route is not None
    assert callable(route.target)
    route.target(ex.body)
