from __future__ import annotations

import msgspec

from comfy_async.models import PromptRejection, PromptResponse
from tests.recordings import find, matching

_RESPONSE = msgspec.json.Decoder(PromptResponse)
_REJECTION = msgspec.json.Decoder(PromptRejection)


def test_accepted_prompts() -> None:
    accepted = [_RESPONSE.decode(ex.body) for ex in matching("POST", "/prompt")]
    assert len(accepted) > 20
    assert all(r.prompt_id for r in accepted)
    fractional = _RESPONSE.decode(find("12", "POST /prompt with extra_data + number").body)
    assert fractional.number == 7.5
    assert not fractional.partially_rejected


def test_accepted_with_node_errors() -> None:
    body = find(
        "03", "POST /prompt validation case: one output invalid, another valid (partial acceptance)"
    ).body
    response = _RESPONSE.decode(body)
    assert response.partially_rejected
    assert all(error.errors for error in response.node_errors.values())


def test_rejections() -> None:
    rejections = [_REJECTION.decode(ex.body) for ex in matching("POST", "/prompt", status=400)]
    types = {r.error.type for r in rejections}
    assert {"missing_node_type", "prompt_no_outputs", "no_prompt", "invalid_prompt_id"} <= types
    assert "prompt_outputs_failed_validation" in types
