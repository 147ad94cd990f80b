"""``comfy.files``: uploads as the server parses them, ``/view`` queries, safe saving to disk."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from pathlib import Path

import pytest
from aiohttp import web

from comfy_async import ComfyClient
from comfy_async.errors import ConfigurationError, DownloadTooLargeError, UnsafePathError
from comfy_async.models import FileRef, OutputFile
from tests.http_mocks import CLOUD, FAST, KEY, LOCAL, base, calls, mocked_http, serve

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def _echo_upload(request: web.Request) -> web.Response:
    form = await request.post()
    image = form["image"]
    assert isinstance(image, web.FileField)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return web.json_response(
        {
            "name": image.filename,
            "subfolder": fields.get("subfolder", ""),
            "type": fields.get("type", "input"),
            "echo": {
                "fields": fields,
                "content_type": image.content_type,
                "size": len(image.file.read()),
            },
        }
    )


@pytest.fixture
async def upload_server() -> object:
    routes = {
        ("POST", "/api/upload/image"): _echo_upload,
        ("POST", "/api/upload/mask"): _echo_upload,
    }
    async with serve(routes) as (server, recorder):
        async with ComfyClient(base(server), options=FAST) as comfy:
            yield comfy, recorder


async def test_upload_image_fields(upload_server: object, tmp_path: Path) -> None:
    comfy, _ = upload_server  # type: ignore[misc]
    result = await comfy.files.upload_image(
        PNG, name="in.png", type="temp", subfolder="sub", overwrite=True
    )
    assert (result.name, result.subfolder, result.type) == ("in.png", "sub", "temp")
    assert result.asset is None
    assert result.path == "sub/in.png"


async def test_upload_sources(upload_server: object, tmp_path: Path) -> None:
    comfy, recorder = upload_server  # type: ignore[misc]
    path = tmp_path / "from_disk.png"
    path.write_bytes(PNG)
    assert (await comfy.files.upload_image(path)).name == "from_disk.png"
    assert (await comfy.files.upload_image(str(path), name="renamed.png")).name == "renamed.png"
    with path.open("rb") as handle:
        assert (await comfy.files.upload_image(handle)).name == "from_disk.png"
    assert (await comfy.files.upload_image(io.BytesIO(PNG), name="mem.png")).name == "mem.png"
    with pytest.raises(ConfigurationError):
        await comfy.files.upload_image(PNG)
    with pytest.raises(ConfigurationError):
        await comfy.files.upload_image(io.BytesIO(PNG))
    assert len(recorder.requests) == 4
    assert all("multipart/form-data" in h["Content-Type"] for h in recorder.headers)
    assert not any("Origin" in h for h in recorder.headers)


async def test_upload_mask_sends_original_ref(upload_server: object) -> None:
    comfy, _ = upload_server  # type: ignore[misc]
    original = FileRef(filename="probe_upload.png", subfolder="", type="input")
    result = await comfy.files.upload_mask(PNG, original=original, name="mask.png")
    assert result.name == "mask.png"


async def test_upload_form_as_sent(mocked: mocked_http, tmp_path: Path) -> None:
    recorded = {"name": "probe_upload (1).png", "subfolder": "", "type": "input"}
    async with ComfyClient(LOCAL, options=FAST) as comfy:
        mocked.post(f"{LOCAL}/api/upload/mask", payload=recorded)
        original = FileRef(filename="a.png", subfolder="s", type="input")
        result = await comfy.files.upload_mask(PNG, original=original, name="probe_upload.png")
        (call,) = calls(mocked, "POST", f"{LOCAL}/api/upload/mask")
    assert result.name == "probe_upload (1).png"  # the server's final name is what counts
    fields = {field[0]["name"]: field for field in call["data"]._fields}
    assert set(fields) == {"image", "type", "subfolder", "overwrite", "original_ref"}
    assert fields["image"][0]["filename"] == "probe_upload.png"
    assert fields["image"][1]["Content-Type"] == "image/png"
    assert fields["overwrite"][2] == "false"
    assert json.loads(fields["original_ref"][2]) == {
        "filename": "a.png",
        "subfolder": "s",
        "type": "input",
    }


# --------------------------------------------------------------------------- /view


@pytest.mark.parametrize("base_url", [LOCAL, CLOUD])
async def test_view_query(base_url: str, mocked: mocked_http) -> None:
    comfy = ComfyClient(base_url, api_key=KEY if base_url == CLOUD else None, options=FAST)
    url = f"{base_url}/api/view?filename=a.png&type=temp&subfolder=s&preview=webp;50&channel=rgb"
    mocked.get(url, body=b"abc")
    ref = OutputFile(filename="a.png", subfolder="s", type="temp")
    chunks = [chunk async for chunk in comfy.files.view(ref, preview="webp;50", channel="rgb")]
    assert b"".join(chunks) == b"abc"
    mocked.get(f"{base_url}/api/view?filename=b.png&type=output&subfolder=", body=b"de")
    assert await comfy.files.read("b.png") == b"de"
    mocked.get(f"{base_url}/api/view?filename=c.png&type=input&subfolder=x", body=b"f")
    assert await comfy.files.read("c.png", type="input", subfolder="x") == b"f"
    await comfy.aclose()


async def test_view_metadata(local: ComfyClient, mocked: mocked_http) -> None:
    url = f"{LOCAL}/api/view_metadata/checkpoints?filename="
    mocked.get(f"{url}m.safetensors", payload={"ss_network_dim": "16"})
    mocked.get(f"{url}nothing.safetensors", status=404)
    assert await local.files.view_metadata("checkpoints", "m.safetensors") == {
        "ss_network_dim": "16"
    }
    assert await local.files.view_metadata("checkpoints", "nothing.safetensors") is None


async def test_cloud_view_follows_the_signed_url_without_credentials() -> None:
    async def storage(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async with serve({("GET", "/b/{name}"): storage}, host="127.0.0.2") as (other, seen):

        async def view(request: web.Request) -> web.StreamResponse:
            name = request.query["filename"]
            raise web.HTTPFound(f"{base(other)}/b/{name}?Signature=sig-SECRET")

        async with serve({("GET", "/api/view"): view}) as (home, _):
            async with ComfyClient.cloud(api_key=KEY, base_url=base(home), options=FAST) as comfy:
                assert await comfy.files.read("out.png") == PNG
    (headers,) = seen.headers
    assert not {name.lower() for name in headers} & {"x-api-key", "authorization", "cookie"}


# --------------------------------------------------------------------------- saving


TRAVERSAL = [
    ("../escape.png", ""),
    ("ok.png", "../.."),
    ("/abs.png", ""),
    ("ok.png", "/tmp"),
    ("..\\win.png", "..\\.."),
    ("C:\\x.png", ""),
    ("..", ""),
    ("n\0ul.png", ""),
]


@pytest.mark.parametrize(("filename", "subfolder"), TRAVERSAL)
async def test_traversal_names_write_nothing_outside(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path, filename: str, subfolder: str
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    mocked.get(re.compile(rf"^{re.escape(LOCAL)}/api/view\?.*$"), body=b"data", repeat=True)
    ref = OutputFile(filename=filename, subfolder=subfolder)
    try:
        written = await local.files.save([ref], target)
    except UnsafePathError:
        written = []
    for path in written:
        assert target in path.resolve().parents
    outside = {p for p in tmp_path.rglob("*") if p != target and target not in p.parents}
    assert outside == set()


async def test_save_outputs_of_a_history_entry(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path
) -> None:
    outputs = {
        "9": {"images": [{"filename": "a.png", "subfolder": "s", "type": "output"}]},
        "10": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}], "text": ["x"]},
    }
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=s", body=b"A")
    paths = await local.files.save(outputs, tmp_path)
    assert paths == [tmp_path / "s" / "a.png"]
    assert (tmp_path / "s" / "a.png").read_bytes() == b"A"
    assert [p.name for p in tmp_path.rglob("*.part")] == []


async def test_download_to_a_folder_or_a_path(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path
) -> None:
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=", body=b"1", repeat=True)
    ref = FileRef(filename="a.png")
    assert await local.files.download(ref, tmp_path) == tmp_path / "a.png"
    with pytest.raises(UnsafePathError, match="exists"):
        await local.files.download(ref, tmp_path)
    assert await local.files.download(ref, tmp_path, overwrite=True) == tmp_path / "a.png"
    assert await local.files.download(ref, tmp_path / "b.bin") == tmp_path / "b.bin"
    assert (tmp_path / "b.bin").read_bytes() == b"1"


async def test_an_existing_symlink_is_replaced_not_followed(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.png").symlink_to(victim)
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=", body=b"new", repeat=True)
    with pytest.raises(UnsafePathError):
        await local.files.download(FileRef(filename="a.png"), folder)
    await local.files.download(FileRef(filename="a.png"), folder, overwrite=True)
    assert victim.read_bytes() == b"keep"
    assert not (folder / "a.png").is_symlink()
    assert (folder / "a.png").read_bytes() == b"new"


async def test_a_symlinked_subfolder_cannot_lead_out(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=sub", body=b"x")
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=sub/deeper", body=b"x")
    for subfolder in ("sub", "sub/deeper"):
        with pytest.raises(UnsafePathError, match="outside"):
            await local.files.save([OutputFile(filename="a.png", subfolder=subfolder)], folder)
    assert list(outside.iterdir()) == []  # not even a folder was created there


async def test_a_gzip_bomb_download_stops_at_the_cap_and_leaves_no_file(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)

    async def view(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    async with serve({("GET", "/api/view"): view}) as (server, _):
        async with ComfyClient(base(server), options=FAST) as comfy:
            with pytest.raises(DownloadTooLargeError):
                await comfy.files.download(
                    FileRef(filename="bomb.png"), tmp_path, max_bytes=2 * 1024 * 1024
                )
    assert os.listdir(tmp_path) == []


async def test_content_length_over_the_cap_creates_no_file(
    local: ComfyClient, mocked: mocked_http, tmp_path: Path
) -> None:
    mocked.get(f"{LOCAL}/api/view?filename=a.png&type=output&subfolder=", body=b"x" * 64)
    with pytest.raises(DownloadTooLargeError):
        await local.files.download(FileRef(filename="a.png"), tmp_path, max_bytes=10)
    assert os.listdir(tmp_path) == []
