from __future__ import annotations

import msgspec
import pytest

from comfy_async.models import (
    UserDataEntry,
    UserDataFile,
    Users,
    decode_userdata_entries,
    decode_userdata_file,
    decode_userdata_files,
    decode_users,
)
from tests.recordings import find


def test_single_user_server() -> None:
    users = decode_users(find("10", "GET /users").body)
    assert users == Users(storage="server", migrated=False)
    assert not users.multi_user


def test_multi_user_server() -> None:
    users = decode_users(b'{"storage": "server", "users": {"alice_0b1c": "alice"}}')
    assert users.multi_user
    assert users.users == {"alice_0b1c": "alice"}
    assert users.migrated is None


def test_recorded_v2_listing_is_empty() -> None:
    assert decode_userdata_entries(find("10", "GET /v2/userdata").body) == []


def test_v2_listing() -> None:
    body = (
        b'[{"name": "workflows", "path": "workflows", "type": "directory"},'
        b' {"name": "a.json", "path": "workflows/a.json", "type": "file",'
        b' "size": 12, "modified": 1760000000.25}]'
    )
    folder, file = decode_userdata_entries(body)
    assert folder.is_dir
    assert folder.size is None
    assert file == UserDataEntry(
        name="a.json", path="workflows/a.json", type="file", size=12, modified=1760000000.25
    )
    assert not file.is_dir


def test_listing_in_every_style() -> None:
    plain = decode_userdata_files(b'["a.json", "sub/b.json"]')
    split = decode_userdata_files(b'[["a.json", "a.json"], ["sub/b.json", "sub", "b.json"]]')
    full = decode_userdata_files(
        b'[{"path": "a.json", "size": 2, "modified": 1760000000.5, "created": 1760000000.0},'
        b' {"path": "sub/b.json", "size": 3, "modified": 1760000001}]'
    )
    assert [f.path for f in plain] == [f.path for f in split] == [f.path for f in full]
    assert plain[1] == UserDataFile(path="sub/b.json")
    assert split[1].parts == ["sub", "b.json"]
    assert full[0].size == 2
    assert full[0].created == 1760000000.0
    assert full[1].created is None
    assert decode_userdata_files(b"[[]]") == [UserDataFile(path="")]


def test_write_answer_is_a_path_or_an_info() -> None:
    assert decode_userdata_file(b'"workflows/a.json"') == UserDataFile(path="workflows/a.json")
    info = decode_userdata_file(b'{"path": "workflows/a.json", "size": 9, "modified": 1.5}')
    assert info.size == 9


@pytest.mark.parametrize(
    ("decode", "body"),
    [
        (decode_users, b'{"migrated": "no"}'),
        (decode_users, b'{"users": ["alice"]}'),
        (decode_userdata_files, b'[{"size": 1}]'),
        (decode_userdata_files, b"[1]"),
        (decode_userdata_file, b"[]"),
        (decode_userdata_entries, b'[{"name": "a"}]'),
        (decode_userdata_entries, b'{"name": "a", "path": "a"}'),
    ],
)
def test_wrong_shapes(decode: object, body: bytes) -> None:
    assert callable(decode)
    with pytest.raises(msgspec.ValidationError):
        decode(body)
