"""The base of every REST namespace, and the decoders of the routes that have no model.

:class:`Namespace` holds the session's :class:`~comfy_async._transport.http.HttpClient` and compiles
routes by name. A route whose answer differs in shape between flavours picks its decoder by the
route's path template (:meth:`Namespace._decoder`), so the choice stays data, not a branch.
The module-level decoders here serve the free-form routes (lists of names, settings, frontend
data), one reusable decoder per type (design §7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from comfy_async._transport.http import HttpClient
    from comfy_async._transport.routes import CompiledRoute

__all__ = ["Namespace", "decode_any", "decode_dict", "decode_string_lists", "decode_strings"]

T = TypeVar("T")

_ANY = msgspec.json.Decoder()
_DICT = msgspec.json.Decoder(dict[str, Any])
_STRINGS = msgspec.json.Decoder(list[str])
_STRING_LISTS = msgspec.json.Decoder(dict[str, list[str]])


def decode_any(buf: bytes) -> Any:
    """Decode free-form JSON (user settings, frontend data)."""
    return _ANY.decode(buf)


def decode_dict(buf: bytes) -> dict[str, Any]:
    """Decode a JSON object with free-form values."""
    return _DICT.decode(buf)


def decode_strings(buf: bytes) -> list[str]:
    """Decode a JSON list of strings (embeddings, extensions, internal file listings)."""
    return _STRINGS.decode(buf)


def decode_string_lists(buf: bytes) -> dict[str, list[str]]:
    """Decode ``{name: [str, …]}`` (``/internal/folder_paths``)."""
    return _STRING_LISTS.decode(buf)


class Namespace:
    """A group of REST methods over one :class:`~comfy_async._transport.http.HttpClient`."""

    __slots__ = ("_http",)

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._http!r}>"

    def _route(self, name: str, /, **params: object) -> CompiledRoute:
        return self._http.routes.route(name, **params)

    def _decoder(
        self, name: str, decoders: Mapping[str, Callable[[bytes], T]]
    ) -> Callable[[bytes], T]:
        """The decoder for endpoint ``name``, chosen by its path template in this flavour."""
        return decoders[self._http.routes.routes[name].template]
