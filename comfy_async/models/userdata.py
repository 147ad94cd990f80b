"""Payloads of the per-user storage routes: ``/users`` and ``/userdata`` (§2.4).

``GET /userdata?dir=`` answers in three styles depending on its query: relative paths,
``[path, *parts]`` lists with ``split=true``, or file-info objects with ``full_info=true``
(always on Comfy Cloud). :func:`decode_userdata_files` turns each into :class:`UserDataFile`;
``POST /userdata/{file}`` and its ``move`` answer with one path or one file-info object
(:func:`decode_userdata_file`). ``GET /v2/userdata`` lists files and directories
(:class:`UserDataEntry`). Settings are free-form JSON and have no model.
"""

from __future__ import annotations

import msgspec

from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "UserDataEntry",
    "UserDataFile",
    "Users",
    "decode_userdata_entries",
    "decode_userdata_file",
    "decode_userdata_files",
    "decode_users",
]


class Users(Model, frozen=True):
    """``GET /users``: storage mode, and the users when the server runs with ``--multi-user``.

    Single-user servers send ``migrated`` (whether the user folder exists); multi-user servers
    send ``users`` (id → name) instead.
    """

    storage: str = "server"
    migrated: bool | None = None
    users: dict[str, str] | None = None

    @property
    def multi_user(self) -> bool:
        """Whether the server runs with ``--multi-user`` (select the user by ``comfy-user``)."""
        return self.users is not None


class UserDataFile(Model, frozen=True):
    """A file of a user's data folder.

    ``path`` is relative to the listed folder in listings, and to the user's root in the answers
    of writes and moves.

    ``size`` (bytes), ``modified`` and ``created`` (epoch seconds) come with ``full_info``;
    they are ``None`` when the server sent only the path.
    """

    path: str
    size: int | None = None
    modified: int | float | None = None
    created: int | float | None = None

    @property
    def parts(self) -> list[str]:
        """The path split on ``/``."""
        return self.path.split("/")


class UserDataEntry(Model, frozen=True):
    """One item of ``GET /v2/userdata``: a file or a directory (directories come first).

    ``path`` is relative to the user's root. ``size`` and ``modified`` are set for files only.
    """

    name: str
    path: str
    type: str = "file"
    size: int | None = None
    modified: int | float | None = None

    @property
    def is_dir(self) -> bool:
        """Whether this is a directory."""
        return self.type == "directory"


_USERS = msgspec.json.Decoder(Users)
_USERDATA_FILES = msgspec.json.Decoder(list[str | list[str] | UserDataFile])
_USERDATA_FILE = msgspec.json.Decoder(str | UserDataFile)
_USERDATA_ENTRIES = msgspec.json.Decoder(list[UserDataEntry])


def _userdata_file(item: str | list[str] | UserDataFile) -> UserDataFile:
    if isinstance(item, str):
        return UserDataFile(path=item)
    if isinstance(item, list):
        # split=true: [relative path, part, part, ...]; the path is the first element
        return UserDataFile(path=item[0] if item else "")
    return item


def decode_users(buf: JsonBuffer) -> Users:
    """Decode the body of ``GET /users``."""
    return _USERS.decode(buf)


def decode_userdata_files(buf: JsonBuffer) -> list[UserDataFile]:
    """Decode ``GET /userdata?dir=…`` in any of its styles (plain, ``split``, ``full_info``)."""
    return [_userdata_file(item) for item in _USERDATA_FILES.decode(buf)]


def decode_userdata_file(buf: JsonBuffer) -> UserDataFile:
    """Decode the answer of ``POST /userdata/{file}`` or its ``/move/{dest}`` (path or info)."""
    return _userdata_file(_USERDATA_FILE.decode(buf))


def decode_userdata_entries(buf: JsonBuffer) -> list[UserDataEntry]:
    """Decode the body of ``GET /v2/userdata``."""
    return _USERDATA_ENTRIES.decode(buf)
