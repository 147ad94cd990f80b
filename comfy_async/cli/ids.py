"""Prompt ids as the command line takes them: a full id, or any unique prefix of one (as git).

The command line prints ids shortened to 8 characters; every command that takes an id accepts
that, or any prefix that names one prompt the server knows (queued, running or in its history).
A prefix that names several is refused with the candidates; one that names none is passed on
unchanged, so the command says plainly that the server has no such prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async.cli.failures import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from comfy_async.client import ComfyClient

__all__ = ["FULL_ID_LENGTH", "known_prompt_ids", "match_prefix", "resolve_prompt_ids"]

#: The length of a canonical prompt id (a UUID with its dashes).
FULL_ID_LENGTH = 36

#: How many history entries are read to expand a prefix (ComfyUI keeps 10,000 at most).
_HISTORY_WINDOW = 10_000


def match_prefix(given: str, known: Iterable[str]) -> str | None:
    """The one id of ``known`` that ``given`` names (exactly or as a prefix), else ``None``.

    Raises:
        UsageError: ``given`` is empty, or a prefix of several ids (they are listed).

    """
    wanted = given.strip().lower()
    if not wanted:
        raise UsageError("an empty prompt id")
    matches = sorted({candidate for candidate in known if candidate.lower().startswith(wanted)})
    if wanted in (match.lower() for match in matches):
        return next(match for match in matches if match.lower() == wanted)
    if len(matches) > 1:
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        shown = ", ".join(matches[:5]) + more
        raise UsageError(f"{given!r} is ambiguous: it begins {len(matches)} prompt ids ({shown})")
    return matches[0] if matches else None


async def known_prompt_ids(client: ComfyClient) -> list[str]:
    """The ids of every prompt the server knows: running, pending, then its history."""
    queue = await client.queue.get()
    ids = [item.prompt_id for item in (*queue.queue_running, *queue.queue_pending)]
    ids.extend(await client.history.list(max_items=_HISTORY_WINDOW))
    return ids


async def resolve_prompt_ids(client: ComfyClient, given: Sequence[str]) -> list[str]:
    """Expand each of ``given`` to the full id it names; unknown ones are returned unchanged.

    Full ids are taken as they are, without asking the server. Raises :class:`UsageError` for an
    ambiguous prefix.
    """
    if all(len(text) >= FULL_ID_LENGTH for text in given):
        return list(given)
    known = await known_prompt_ids(client)
    return [
        text if len(text) >= FULL_ID_LENGTH else (match_prefix(text, known) or text)
        for text in given
    ]
