"""``watch``: one line per event, previews saved, one prompt followed to its outcome."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from comfy_async.cli import ExitCode
from comfy_async.cli.watch import event_details
from comfy_async.events import ExecutionFailed, NodeProgress, ProgressState, Status
from tests.cli.test_server_commands import queue_prompt, wait_for
from tests.session.graphs import failing, sleeper


async def watch_while(cli, comfy_server, *argv: str | Path, graph: dict[str, object]):
    """Run ``watch ARGV`` and queue ``graph`` (without a client id) once it is connected."""
    sockets = comfy_server.request_counts["GET /ws"]
    watching = asyncio.ensure_future(cli("watch", *argv))
    await wait_for(lambda: comfy_server.request_counts["GET /ws"] > sockets)
    await asyncio.sleep(0.1)
    await queue_prompt(comfy_server, graph)
    return await watching


async def test_watch_prints_broadcast_events_and_saves_previews(
    cli, comfy_server, tmp_path: Path
) -> None:
    previews = tmp_path / "previews"
    graph = sleeper(steps=3, preview="JPEG", text="hello")
    result = await watch_while(
        cli, comfy_server, "--timeout", "1.5", "--previews", previews, graph=graph
    )
    assert result.code == ExitCode.OK, result.err
    kinds = [line.split()[1] for line in result.out.splitlines()]
    assert "status" in kinds
    assert kinds.count("progress") == 3
    assert kinds.count("preview_image") == 3
    assert "progress_text" in kinds
    assert any("node=2 'hello'" in line for line in result.out.splitlines())
    saved = sorted(previews.iterdir())
    assert len(saved) == 3
    assert all(f"→ {path}" in result.out for path in saved)
    assert "watching http://127.0.0.1:" in result.err
    assert " sid=" in result.out.splitlines()[0]  # subscribed before the socket opened


async def test_watch_json_lines_parse(cli, comfy_server) -> None:
    result = await watch_while(
        cli, comfy_server, "--timeout", "1", "--json", graph=sleeper(steps=2, preview="PNG")
    )
    assert result.code == ExitCode.OK
    events = [json.loads(line) for line in result.out.splitlines()]
    assert {"status", "progress", "preview_image"} <= {event["type"] for event in events}
    preview = next(event for event in events if event["type"] == "preview_image")
    assert preview["mime"] == "image/png"
    assert preview["image"] > 0  # the size, not the bytes
    assert all(isinstance(event["time"], float) for event in events)


async def test_watch_follows_one_prompt_to_its_outcome(cli, comfy_server) -> None:
    prompt_id = await queue_prompt(comfy_server, sleeper(steps=5, delay=10))
    result = await cli("watch", "--prompt", prompt_id)
    assert result.code == ExitCode.OK, result.err
    assert "job_reconciled" in result.out
    assert f"prompt {prompt_id} succeeded" in result.err
    assert "replacing it" not in result.err  # another client's prompt: the socket is fine


async def test_watch_of_a_failed_prompt_exits_1(cli, comfy_server) -> None:
    prompt_id = await queue_prompt(comfy_server, failing("no luck"))
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    result = await cli("watch", "--prompt", prompt_id, "--json")
    assert result.code == ExitCode.FAILED
    (event,) = [json.loads(line) for line in result.out.splitlines()]
    assert event == {
        "time": event["time"],
        "type": "job_reconciled",
        "prompt_id": prompt_id,
        "status": "error",
        "source": "attach",
    }
    assert "raised ValueError: no luck" in result.err


async def test_watch_of_an_unknown_prompt_ends_as_lost(cli) -> None:
    result = await cli("watch", "--prompt", "00000000-0000-4000-8000-000000000000")
    assert result.code == ExitCode.FAILED
    assert "lost" in result.err


def test_event_lines_say_what_matters() -> None:
    assert event_details(Status()) == "queue_remaining=0"
    assert event_details(Status(sid="abc")) == "queue_remaining=0 sid=abc"
    failed = ExecutionFailed(
        prompt_id="p", node_id="4", exception_type="RuntimeError", exception_message="boom\nmore"
    )
    assert event_details(failed) == "node=4 RuntimeError: boom"
    blocked = ExecutionFailed(
        prompt_id="p", node_id="5", exception_type="ExecutionBlocked", exception_message="why"
    )
    assert event_details(blocked) == "node=5 blocked: why"
    state = ProgressState(
        prompt_id="p",
        nodes={"1": NodeProgress(state="finished"), "2": NodeProgress(), "3": NodeProgress()},
    )
    assert event_details(state) == "finished=1 running=2"
