"""``comfy.userdata``, ``comfy.settings``, ``comfy.users``: per-user storage (protocol doc §2.4).

On a ``--multi-user`` server the user is chosen by the session's ``user`` (sent as the
``comfy-user`` header); otherwise it is always ``default``. File paths inside the user folder
(``workflows/a.json``) are sent as one URL-encoded path segment, as the server requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfy_async._transport.rest.namespace import Namespace, decode_any
from comfy_async.models.userdata import (
    UserDataEntry,
    UserDataFile,
    decode_userdata_entries,
    decode_userdata_file,
    decode_userdata_files,
    decode_users,
)
from comfy_async.models.userdata import Users as UsersModel

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._transport.exchange import QueryValue

__all__ = ["Settings", "UserData", "Users"]


class UserData(Namespace):
    """Files of the user's data folder (workflows, settings files…): ``comfy.userdata``.

    Reads can be cancelled harmlessly; a cancelled write may or may not have happened.
    """

    __slots__ = ()

    async def list_v2(self, path: str = "") -> list[UserDataEntry]:
        """Files and directories under ``path`` (directories first)."""
        route = self._route("userdata.list_v2")
        return await self._http.fetch(route, decode_userdata_entries, query={"path": path})

    async def get(self, file: str) -> bytes:
        """A file's bytes (``NotFoundError`` if missing)."""
        return (await self._http.request(self._route("userdata.get", file=file))).body

    async def put(
        self, file: str, data: bytes, *, overwrite: bool = True, full_info: bool = False
    ) -> UserDataFile:
        """Write a file (atomically on the server); returns its path (and info with ``full_info``).

        Raises ``ConflictError`` if it exists and ``overwrite`` is false.
        """
        route = self._route("userdata.put", file=file)
        query = {"overwrite": overwrite, "full_info": full_info}
        response = await self._http.request(route, query=query, data=bytes(data))
        return self._http.decode(response, decode_userdata_file)

    async def delete(self, file: str) -> None:
        """Delete a file (``NotFoundError`` if missing)."""
        await self._http.request(self._route("userdata.delete", file=file))

    async def move(self, file: str, dest: str, *, overwrite: bool = False) -> UserDataFile:
        """Move or rename a file; ``ConflictError`` if ``dest`` exists and not ``overwrite``."""
        route = self._route("userdata.move", file=file, dest=dest)
        return await self._http.fetch(route, decode_userdata_file, query={"overwrite": overwrite})

    async def list(
        self,
        dir: str,  # noqa: A002 - the server's parameter name
        *,
        recurse: bool = False,
        full_info: bool = False,
        split: bool = False,
    ) -> list[UserDataFile]:
        """Files under the folder ``dir`` (relative paths; size and times with ``full_info``)."""
        query: dict[str, QueryValue] = {
            "dir": dir,
            "recurse": recurse,
            "full_info": full_info,
            "split": split,
        }
        route = self._route("userdata.list")
        return await self._http.fetch(route, decode_userdata_files, query=query)


class Settings(Namespace):
    """The user's frontend settings: ``comfy.settings``.

    Reads can be cancelled harmlessly; a cancelled write may or may not have happened.
    """

    __slots__ = ()

    async def all(self) -> dict[str, Any]:
        """Every setting by id."""
        value = await self._http.fetch(self._route("settings.all"), decode_any)
        return value if isinstance(value, dict) else {}

    async def get(self, setting_id: str) -> Any:
        """One setting's value (``None`` when unset)."""
        return await self._http.fetch(
            self._route("settings.get", setting_id=setting_id), decode_any
        )

    async def update(self, settings: Mapping[str, Any]) -> None:
        """Set several settings at once (others are kept)."""
        await self._http.request(self._route("settings.update"), json=dict(settings))

    async def set(self, setting_id: str, value: Any) -> None:
        """Set one setting."""
        await self._http.request(self._route("settings.set", setting_id=setting_id), json=value)


class Users(Namespace):
    """The server's users (``--multi-user``): ``comfy.users``.

    Reading can be cancelled harmlessly; see :meth:`create` for creating.
    """

    __slots__ = ()

    async def get(self) -> UsersModel:
        """The storage mode, and the users (id → name) on a multi-user server."""
        return await self._http.fetch(self._route("users.get"), decode_users)

    async def create(self, username: str) -> str:
        """Create a user; returns its new id (``BadRequestError`` for a taken or bad name).

        Never retried automatically; cancelling may leave the user created or not.
        """
        return await self._http.fetch(
            self._route("users.create"), decode_any, json={"username": username}
        )
