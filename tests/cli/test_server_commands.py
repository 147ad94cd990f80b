"""``queue``, ``jobs``, ``history``, ``interrupt``, ``free``, ``stats``, ``models``, ``upload``,
``download``: against the fake server, in text and in JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from comfy_async.cli import ExitCode
from tests.session.graphs import failing, sleeper


async def queue_prompt(server, graph: dict[str, object]) -> str:
    """POST a prompt as another client would (no client id); return its id."""
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{server.url}/api/prompt", json={"prompt": graph})
        assert response.status == 200, await response.text()
        return str((await response.json())["prompt_id"])


async def wait_for(predicate, limit: float = 10) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def busy(comfy_server) -> tuple[str, str, str]:
    """One slow prompt running and two waiting behind it."""
    running = await queue_prompt(comfy_server, sleeper(steps=1000, delay=60))
    first = await queue_prompt(comfy_server, sleeper())
    second = await queue_prompt(comfy_server, sleeper())
    await wait_for(lambda: comfy_server.queue_remaining == 3)
    return running, first, second


async def test_queue_shows_running_and_pending(cli, busy) -> None:
    running, first, second = busy
    result = await cli("queue")
    assert result.code == ExitCode.OK
    lines = result.out.splitlines()
    assert lines[0].split() == ["STATE", "PROMPT", "ID", "NUMBER", "QUEUED", "CLIENT"]
    assert lines[1].startswith(f"running  {running}")
    assert [line.split()[1] for line in lines[2:]] == [first, second]
    data = (await cli("queue", "--json")).json()
    assert [item["prompt_id"] for item in data["running"]] == [running]
    assert [item["prompt_id"] for item in data["pending"]] == [first, second]


async def test_queue_delete_and_clear_touch_only_pending(cli, comfy_server, busy) -> None:
    running, first, _second = busy
    deleted = await cli("queue", "--delete", first, "--json")
    assert deleted.code == ExitCode.OK
    assert deleted.json() == {"deleted": [first], "not_found": [], "running": [], "not_deleted": []}
    assert comfy_server.queue_remaining == 2
    cleared = await cli("queue", "--clear")
    assert cleared.out == "cleared the pending queue\n"
    assert comfy_server.queue_remaining == 1
    await cli("interrupt", running)
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    assert (await cli("queue")).out == "the queue is empty\n"


async def test_queue_delete_reports_only_what_the_queue_lost(cli, comfy_server, busy) -> None:
    running, first, second = busy
    # Ids that name nothing are not "deleted": exit 1, each named on stderr, the queue untouched.
    nothing = await cli("queue", "--delete", "zzzz", "12345678")
    assert nothing.code == ExitCode.FAILED
    assert nothing.out == ""
    assert "zzzz: no pending prompt has this id" in nothing.err
    assert "12345678: no pending prompt has this id" in nothing.err
    assert comfy_server.queue_remaining == 3
    # The 8-character id the command line prints is accepted, and the prompt really goes.
    short = await cli("queue", "--delete", first[:8])
    assert short.code == ExitCode.OK
    assert short.out == f"deleted 1 pending prompt(s): {first}\n"
    assert comfy_server.queue_remaining == 2
    # A running prompt is not deleted, and saying so is not success.
    mixed = await cli("queue", "--delete", second[:8], running[:8], "--json")
    assert mixed.code == ExitCode.FAILED
    assert mixed.json() == {
        "deleted": [second],
        "not_found": [],
        "running": [running],
        "not_deleted": [],
    }


async def test_any_unique_prefix_names_a_prompt(cli, comfy_server, busy) -> None:
    _running, first, _second = busy
    shown = await cli("jobs", "show", first[:8], "--json")
    assert shown.code == ExitCode.OK
    assert shown.json()["id"] == first
    cancelled = await cli("jobs", "cancel", first[:6], "--json")
    assert cancelled.json() == {"cancelled": [first], "not_cancelled": []}
    unknown = await cli("jobs", "show", "ffff0000")
    assert unknown.code == ExitCode.FAILED
    assert unknown.err == "error: no job ffff0000 on the server\n"


async def test_an_ambiguous_prefix_is_refused_with_the_candidates(comfy_server) -> None:
    from comfy_async.cli.failures import UsageError
    from comfy_async.cli.ids import match_prefix

    known = ["abc10000-0000-4000-8000-000000000000", "abc20000-0000-4000-8000-000000000000"]
    assert match_prefix("abc1", known) == known[0]
    assert match_prefix("ABC2", known) == known[1]
    assert match_prefix("abd", known) is None
    with pytest.raises(UsageError, match="'abc' is ambiguous: it begins 2 prompt ids"):
        match_prefix("abc", known)


async def test_queue_options_exclude_each_other(cli) -> None:
    result = await cli("queue", "--clear", "--delete", "x")
    assert result.code == ExitCode.USAGE
    assert "not allowed with argument" in result.err


async def test_interrupt_stops_the_running_prompt(cli, comfy_server, busy) -> None:
    running, _, _ = busy
    result = await cli("interrupt", "--json")
    assert result.json() == {"interrupted": None}
    await wait_for(lambda: comfy_server.queue_remaining == 0)  # the pending two ran then
    history = await cli("history", "show", running, "--json")
    assert history.json()["status"] == "interrupted"
    one = await cli("interrupt", "not-running")
    assert one.out == "interrupted not-running (if it was running)\n"


async def test_jobs_list_show_and_cancel(cli, comfy_server, busy) -> None:
    running, first, second = busy
    listed = await cli("jobs", "--json")
    assert listed.code == ExitCode.OK
    statuses = {job["id"]: job["status"] for job in listed.json()["jobs"]}
    assert statuses == {running: "in_progress", first: "pending", second: "pending"}
    pending = await cli("jobs", "--status", "pending")
    assert pending.out.splitlines()[0].split() == ["ID", "STATUS", "CREATED", "DURATION", "OUTPUTS"]
    assert {line.split()[0] for line in pending.out.splitlines()[1:]} == {first, second}
    cancelled = await cli("jobs", "cancel", first, second, running, "--json")
    assert cancelled.code == ExitCode.OK
    assert cancelled.json() == {"cancelled": [first, second, running], "not_cancelled": []}
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    again = await cli("jobs", "cancel", first)
    assert again.code == ExitCode.FAILED
    assert "nothing to cancel" in again.err
    shown = await cli("jobs", "show", running)
    assert shown.out.startswith(f"job {running}: cancelled")
    detail = (await cli("jobs", "show", running, "--json")).json()
    assert detail["id"] == running
    assert detail["status"] == "cancelled"


async def test_jobs_show_of_a_failure_and_of_nothing(cli, comfy_server) -> None:
    prompt_id = await queue_prompt(comfy_server, failing("bad luck"))
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    shown = await cli("jobs", "show", prompt_id)
    assert "error     node 2 (ProbeRaise) raised ValueError: bad luck" in shown.out
    missing = await cli("jobs", "show", "00000000-0000-4000-8000-000000000000")
    assert missing.code == ExitCode.FAILED
    assert missing.err.startswith("error: no job")


async def test_history_list_show_and_clear(cli, comfy_server, tmp_path: Path) -> None:
    done = await queue_prompt(comfy_server, sleeper())
    broken = await queue_prompt(comfy_server, failing())
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    listed = await cli("history")
    rows = [line.split() for line in listed.out.splitlines()[1:]]
    # Newest first, the order `jobs` uses.
    assert [(row[0], row[1]) for row in rows] == [(broken, "error"), (done, "success")]
    data = (await cli("history", "--json")).json()
    assert [entry["status"] for entry in data["history"]] == ["error", "success"]
    assert data["history"][0]["error"]["node_id"] == "2"
    shown = await cli("history", "show", done)
    assert "out_00001_.png  (output, node 3, images)" in shown.out
    cleared = await cli("history", "--clear", "--json")
    assert cleared.json() == {"cleared": True}
    assert (await cli("history")).out == "the history is empty\n"
    missing = await cli("history", "show", done)
    assert missing.code == ExitCode.FAILED


async def test_download_saves_the_outputs_of_a_prompt(cli, comfy_server, tmp_path: Path) -> None:
    prompt_id = await queue_prompt(comfy_server, sleeper())
    await wait_for(lambda: comfy_server.queue_remaining == 0)
    result = await cli("download", prompt_id, "-o", tmp_path)
    assert result.code == ExitCode.OK
    assert result.out == f"{tmp_path / 'out_00001_.png'}\n"
    assert (tmp_path / "out_00001_.png").read_bytes().startswith(b"\x89PNG")
    # The same rule and words as `run`: the file is kept, the message names --overwrite.
    again = await cli("download", prompt_id[:8], "-o", tmp_path)
    assert again.code == ExitCode.OK
    target = tmp_path / "out_00001_.png"
    assert again.err == f"kept {target}: a file of that name exists (--overwrite replaces it)\n"
    assert "unsafe" not in again.err
    replaced = await cli("download", prompt_id, "-o", tmp_path, "--overwrite", "--json")
    assert replaced.json() == {"prompt_id": prompt_id, "files": [str(target)], "kept": []}
    missing = await cli("download", "00000000-0000-4000-8000-000000000000")
    assert missing.code == ExitCode.FAILED
    assert "no finished prompt" in missing.err


async def test_upload_prints_the_name_to_use(cli, comfy_server, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG not really")
    result = await cli("upload", image)
    assert result.out == "cat.png\n"
    image.write_bytes(b"\x89PNG another cat")
    renamed = await cli("upload", image, "--json")
    assert renamed.json()["name"] == "cat (1).png"
    sub = await cli("upload", image, "--subfolder", "pets", "--overwrite")
    assert sub.out == "pets/cat.png\n"
    assert (comfy_server.base_dir / "input" / "pets" / "cat.png").exists()
    missing = await cli("upload", tmp_path / "nope.png")
    assert missing.code == ExitCode.USAGE
    assert "nope.png" in missing.err


async def test_stats_free_and_models(cli, comfy_server) -> None:
    stats = await cli("stats")
    assert stats.out.startswith("ComfyUI 0.33.0 · Python")
    assert "RAM" in stats.out
    assert (await cli("stats", "--json")).json()["system"]["comfyui_version"] == "0.33.0"
    free = await cli("free")
    assert free.out == "asked the server to unload models and free memory (done between prompts)\n"
    assert comfy_server.request_counts["POST /free"] == 1
    only = await cli("free", "--unload-models", "--json")
    assert only.json() == {"unload_models": True, "free_memory": False}
    folders = await cli("models")
    assert "checkpoints" in folders.out.splitlines()
    assert "loras" in (await cli("models", "--json")).json()
    files = await cli("models", "checkpoints", "--json")
    assert files.json() == sorted(comfy_server.models["checkpoints"])
    unknown = await cli("models", "no-such-folder")
    assert unknown.code == ExitCode.FAILED
    assert unknown.err.startswith("error: HTTP 404")


async def test_nodes_from_the_server(cli) -> None:
    shown = await cli("nodes", "ProbeSleepProgress")
    assert shown.out.startswith("ProbeSleepProgress  (Probe: sleep with progress; testing/probe)")
    found = await cli("nodes", "probe", "--json")
    assert {item["name"] for item in found.json()} >= {"ProbeSleepProgress", "ProbeRaise"}


async def test_cloud_with_its_key_from_the_environment(
    offline, comfy_cloud_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = comfy_cloud_server.url
    missing = await offline("--cloud", "--url", url, "queue")
    assert missing.code == ExitCode.USAGE
    assert "COMFY_CLOUD_API_KEY" in missing.err
    monkeypatch.setenv("COMFY_CLOUD_API_KEY", "wrong-key")
    refused = await offline("--cloud", "--url", url, "queue", "-v")
    assert refused.code == ExitCode.UNREACHABLE
    assert "wrong-key" not in refused.err
    monkeypatch.setenv("MY_KEY", comfy_cloud_server.api_key)
    listed = await offline("--cloud", "--url", url, "--api-key-env", "MY_KEY", "queue", "--json")
    assert listed.code == ExitCode.OK, listed.err
    assert listed.json() == {"running": [], "pending": []}
