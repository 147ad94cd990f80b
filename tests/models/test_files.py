from __future__ import annotations

import msgspec
import pytest

from comfy_async.models import FileRef, OutputFile, UploadResult, decode_upload_result, output_files
from tests.recordings import find, matching


def test_recorded_uploads() -> None:
    first = decode_upload_result(find("09", "upload #1 (new name)").body)
    assert first == UploadResult(name="probe_upload.png", subfolder="", type="input")
    assert first.asset is None
    same = decode_upload_result(find("09", "upload #2 same name, same bytes").body)
    assert same.name == "probe_upload.png"
    renamed = decode_upload_result(find("09", "upload #3 same name, different bytes").body)
    assert renamed.name == "probe_upload (1).png"
    sub = decode_upload_result(find("09", "upload #5 subfolder + type=input").body)
    assert sub.subfolder == "probe_sub"
    assert sub.path == "probe_sub/probe_upload.png"
    assert sub.ref == FileRef(filename="probe_upload.png", subfolder="probe_sub", type="input")
    temp = decode_upload_result(find("09", "upload #6 type=temp").body)
    assert temp.type == "temp"
    mask = decode_upload_result(find("09", "upload/mask with original_ref").body)
    assert mask.name == "probe_mask.png"
    assert mask.path == "probe_mask.png"
    assert len(matching("POST", "/upload/(image|mask)")) == 7


def test_upload_with_assets_and_defaults() -> None:
    result = decode_upload_result(b'{"name": "a.png", "asset": {"id": "x", "hash": "blake3:00"}}')
    assert result.subfolder == ""
    assert result.type == "input"
    assert result.asset == {"id": "x", "hash": "blake3:00"}


@pytest.mark.parametrize("body", [b"{}", b'{"name": 3}', b'{"name": "a", "asset": []}', b'"a.png"'])
def test_upload_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_upload_result(body)


def test_preview_output_wire_names() -> None:
    wire = (
        b'{"filename": "a.png", "subfolder": "", "type": "temp",'
        b' "nodeId": "3", "mediaType": "images"}'
    )
    item = msgspec.json.decode(wire, type=OutputFile)
    assert (item.node_id, item.kind, item.type) == ("3", "images", "temp")
    assert isinstance(item, FileRef)
    assert msgspec.json.decode(msgspec.json.encode(item)) == msgspec.json.decode(wire)


def test_output_files_skips_what_is_not_a_file() -> None:
    outputs = {
        "1": {
            "images": [{"filename": "a.png", "subfolder": 5, "type": None}, "b.png", {"name": "c"}]
        },
        "2": {
            "text": ["hi"],
            "animated": [True],
            "3d": [{"filename": "m.glb", "subfolder": "3d", "type": "output"}],
        },
        "3": {},
    }
    assert output_files(outputs) == [
        OutputFile(filename="a.png", node_id="1", kind="images"),
        OutputFile(filename="m.glb", subfolder="3d", node_id="2", kind="3d"),
    ]
