"""Which server a command talks to, with which credentials, and the node catalogue it uses.

Server selection, in order: ``--url``, else ``$COMFY_URLS`` (comma-separated), else
``$COMFY_URL``, else ``http://127.0.0.1:8188``. Several servers (``--url`` given several times)
make a fleet: ``run`` and ``pool`` use a :class:`~comfy_async.pool.ComfyPool` over them, the
commands about one server's state refuse them;
``--cloud`` talks to Comfy Cloud (``--url`` still wins) with the key read from
``$COMFY_CLOUD_API_KEY`` or from the variable ``--api-key-env`` names. Keys and tokens are read
from the environment only, never from the command line (which shell history and ``ps`` keep).
Proxied servers take ``--bearer-token-env``, ``--basic-auth-env`` (``login:password``) and
``--header K:V``. :class:`Context` opens one :class:`~comfy_async.ComfyClient` per invocation,
on first need, and closes it at the end; it also loads the catalogue from the server or from an
``--object-info`` file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import msgspec

from comfy_async.cli.failures import UsageError
from comfy_async.config import ClientOptions, StreamLimits

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from comfy_async.catalogue import Catalogue
    from comfy_async.cli.output import Output
    from comfy_async.client import ComfyClient

__all__ = [
    "CLI_OPTIONS",
    "ENV_CLOUD_KEY",
    "ENV_URL",
    "ENV_URLS",
    "Context",
    "ServerChoice",
    "add_server_options",
    "server_choice",
]

ENV_URL: Final = "COMFY_URL"
"""The environment variable naming the server when ``--url`` is not given."""
ENV_URLS: Final = "COMFY_URLS"
"""The environment variable naming several servers (comma-separated) when ``--url`` is not given."""
ENV_CLOUD_KEY: Final = "COMFY_CLOUD_API_KEY"
"""The environment variable holding the Comfy Cloud API key (``--cloud``)."""
CLI_OPTIONS: Final = ClientOptions(limits=StreamLimits(job_previews=256))
"""Session options of the command line: room for every preview frame of a job (``--previews``)."""


def add_server_options(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    """Add the server selection and authentication options to ``parser``.

    ``default`` is every option's default (``argparse.SUPPRESS`` on subcommands, so that an
    option given before the subcommand is not overwritten by the subcommand's default).
    """
    group = parser.add_argument_group("server")
    group.add_argument(
        "--url",
        action="append",
        default=default,
        help=(
            f"the ComfyUI server (default: ${ENV_URLS} or ${ENV_URL}, else "
            "http://127.0.0.1:8188); several --url make a pool (run, pool)"
        ),
    )
    group.add_argument(
        "--cloud",
        action="store_true",
        default=default if default is not None else False,
        help=f"use Comfy Cloud, with the API key in ${ENV_CLOUD_KEY}",
    )
    group.add_argument(
        "--api-key-env",
        metavar="NAME",
        default=default,
        help=f"read the Cloud API key from variable NAME instead of ${ENV_CLOUD_KEY}",
    )
    group.add_argument(
        "--bearer-token-env",
        metavar="NAME",
        default=default,
        help="send 'Authorization: Bearer' with the token in variable NAME (for a proxy)",
    )
    group.add_argument(
        "--basic-auth-env",
        metavar="NAME",
        default=default,
        help="send basic auth with 'login:password' from variable NAME (for a proxy)",
    )
    group.add_argument(
        "--header",
        metavar="K:V",
        action="append",
        default=default,
        help="an extra header on every request (repeatable)",
    )


@dataclass(frozen=True)
class ServerChoice:
    """The server of an invocation and the credentials to send it."""

    url: str | None
    """The base URL (``None``: Comfy Cloud's own); the first of ``urls``."""
    cloud: bool = False
    api_key: str | None = None
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    """Every server given (more than one: a pool)."""

    @property
    def fleet(self) -> list[ServerChoice]:
        """One choice per server given, with the same credentials."""
        if len(self.urls) < 2:
            return [self]
        return [replace(self, url=url, urls=(url,)) for url in self.urls]

    @property
    def secrets(self) -> list[str]:
        """Every credential value, for redaction of anything printed."""
        values = [self.api_key, self.bearer_token, *self.headers.values()]
        if self.basic_auth is not None:
            values.append(self.basic_auth[1])
        return [value for value in values if value]

    def client(self, options: ClientOptions = CLI_OPTIONS) -> ComfyClient:
        """A new session with this server (nothing is connected yet)."""
        from comfy_async.client import DEFAULT_BASE_URL, ComfyClient  # noqa: PLC0415 - aiohttp

        if self.cloud:
            assert self.api_key is not None
            if self.url is None:
                return ComfyClient.cloud(
                    api_key=self.api_key, headers=self.headers, options=options
                )
            return ComfyClient(
                self.url,
                api_key=self.api_key,
                flavour="cloud",
                headers=self.headers,
                options=options,
            )
        return ComfyClient(
            self.url or DEFAULT_BASE_URL,
            headers=self.headers,
            bearer_token=self.bearer_token,
            basic_auth=self.basic_auth,
            options=options,
        )


def _from_env(environ: Mapping[str, str], name: str, option: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise UsageError(f"{option} names ${name}, which is not set")
    return value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"--header expects NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def server_choice(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerChoice:
    """The server and credentials the options and environment select (UsageError if unusable)."""
    headers = dict(_header(item) for item in (getattr(args, "header", None) or ()))
    bearer = basic = None
    if getattr(args, "bearer_token_env", None):
        bearer = _from_env(environ, args.bearer_token_env, "--bearer-token-env")
    if getattr(args, "basic_auth_env", None):
        login, sep, password = _from_env(
            environ, args.basic_auth_env, "--basic-auth-env"
        ).partition(":")
        if not sep:
            raise UsageError(f"${args.basic_auth_env} must hold 'login:password'")
        basic = (login, password)
    given = getattr(args, "url", None)
    urls: tuple[str, ...]
    if isinstance(given, list) and given:
        urls = tuple(given)
    elif isinstance(given, str):
        urls = (given,)
    elif environ.get(ENV_URLS):
        urls = tuple(part.strip() for part in environ[ENV_URLS].split(",") if part.strip())
    else:
        urls = ()
    if len(set(urls)) != len(urls):
        raise UsageError(f"a server is given twice: {', '.join(urls)}")
    url = urls[0] if urls else None
    if getattr(args, "cloud", False):
        name = getattr(args, "api_key_env", None) or ENV_CLOUD_KEY
        key = environ.get(name, "")
        if not key:
            raise UsageError(
                f"--cloud needs an API key in ${name} (create one at platform.comfy.org); "
                "--api-key-env NAME reads it from another variable"
            )
        if bearer or basic:
            raise UsageError("--cloud authenticates with the API key; drop the proxy auth options")
        return ServerChoice(url, cloud=True, api_key=key, headers=headers, urls=urls)
    return ServerChoice(
        url or environ.get(ENV_URL) or None,
        bearer_token=bearer,
        basic_auth=basic,
        headers=headers,
        urls=urls,
    )


class Context:
    """One invocation: its arguments, its output and the session it opened, if any."""

    def __init__(self, args: argparse.Namespace, out: Output, environ: Mapping[str, str]) -> None:
        self.args = args
        self.out = out
        self.environ = environ
        self._clients: list[ComfyClient] = []
        self._choice: ServerChoice | None = None

    @property
    def server(self) -> ServerChoice:
        """The server the options select (read once; UsageError if the options are unusable)."""
        if self._choice is None:
            self._choice = server_choice(self.args, self.environ)
            self.out.secrets.extend(self._choice.secrets)
        return self._choice

    def client(
        self, choice: ServerChoice | None = None, *, options: ClientOptions = CLI_OPTIONS
    ) -> ComfyClient:
        """A session with the selected server (or ``choice``), closed by :meth:`aclose`.

        Raises:
            UsageError: several servers were given to a command about one server.

        """
        if choice is None and len(self.server.urls) > 1:
            raise UsageError(
                "this command talks to one server: give one --url "
                "(several make a pool, for 'run' and 'pool')"
            )
        client = (choice or self.server).client(options)
        self._clients.append(client)
        return client

    def clients(self, *, options: ClientOptions = CLI_OPTIONS) -> list[ComfyClient]:
        """A session with each server given (one, or a fleet), closed by :meth:`aclose`."""
        return [self.client(choice, options=options) for choice in self.server.fleet]

    async def catalogue(self, object_info: str | None, client: ComfyClient | None) -> Catalogue:
        """The node catalogue: from the ``object_info`` file if given, else from the server.

        Raises:
            UsageError: the file is not a saved ``/object_info`` (a JSON object).

        """
        if object_info is None:
            return await (client or self.client()).nodes()
        from comfy_async.catalogue import Catalogue  # noqa: PLC0415 - optional part

        try:
            return Catalogue.from_file(object_info)
        except (msgspec.DecodeError, EOFError, ValueError) as error:
            raise UsageError(f"{object_info} is not a saved /object_info: {error}") from error

    async def aclose(self) -> None:
        """Close every session this invocation opened."""
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
