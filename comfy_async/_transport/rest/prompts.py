"""``comfy.prompts``: submitting a prompt, and the queue size.

Routes: ``POST /prompt`` and ``GET /prompt`` (protocol doc §2.1, §4.1, §4.2). The request body
carries every field the server reads; a client-minted, canonical lowercase uuid4 ``prompt_id``
is required, because it is what makes a failed submit safe to repair (design invariant 8):

* ``POST /prompt`` is never blindly retried. After an **ambiguous** failure (the connection
  broke or timed out once the request may have been sent, or a 5xx), the prompt id is looked up
  (the jobs API, else the queue then history, twice to cover the moment a prompt moves from one
  to the other). Found: the submit succeeded, and its response is rebuilt. Not found: the body
  is sent again, as often as the retry policy allows, so the server ends with exactly one job.
* A refused connection sent nothing and is simply sent again.
* 400 raises :class:`~comfy_async.errors.PromptValidationError`; a 200 whose ``node_errors`` is
  not empty is returned (``partially_rejected``) and logged as a warning.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from comfy_async._transport.rest.namespace import Namespace
from comfy_async.errors import (
    ComfyError,
    ConfigurationError,
    ConnectError,
    PromptValidationError,
    ServerError,
    TransportError,
    error_for_status,
    redact_text,
)
from comfy_async.models.history import CloudHistoryEntry, HistoryEntry
from comfy_async.models.prompts import PromptRejection, PromptResponse
from comfy_async.models.queue import PromptInfo, decode_prompt_info

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from comfy_async._transport.exchange import Response
    from comfy_async._transport.http import HttpClient
    from comfy_async._transport.rest.history import History
    from comfy_async._transport.rest.jobs import Jobs
    from comfy_async._transport.rest.queue import Queue
    from comfy_async._transport.routes import CompiledRoute

__all__ = ["Prompts", "batch_prompt_id", "new_prompt_id"]

logger = logging.getLogger("comfy_async.rest")

_RESPONSE = msgspec.json.Decoder(PromptResponse)
_REJECTION = msgspec.json.Decoder(PromptRejection)
# str(uuid.UUID(text)) == text, without building the UUID (checked on every submit).
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# How many times the lookup runs before "not found" is believed (§6 rule 5).
_LOOKUP_PASSES = 2


def new_prompt_id() -> str:
    """A fresh prompt id: a canonical lowercase uuid4, the form every server accepts (§4.1, §9)."""
    return str(uuid.uuid4())


def batch_prompt_id(batch_id: str, key: str) -> str:
    """The prompt id of item ``key`` of batch ``batch_id``: the same every time it is asked.

    A canonical lowercase uuid4-form string (version and variant bits set) made from a SHA-256
    of both names, so a retried item (a worker restarted, a command re-run) has the id it had,
    and ``submit_or_attach`` finds it on the server instead of running it again.

    Raises:
        ConfigurationError: an empty batch id or key.

    """
    if not batch_id or not key:
        raise ConfigurationError("a batch item needs a batch id and a key")
    digest = hashlib.sha256(f"comfy_async/batch\0{batch_id}\0{key}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _check_prompt_id(prompt_id: str) -> None:
    try:
        canonical = _CANONICAL.fullmatch(prompt_id) is not None
    except TypeError:  # not a string at all
        canonical = False
    if not canonical:
        raise ConfigurationError(
            f"prompt_id must be a canonical lowercase UUID (see new_prompt_id()), got {prompt_id!r}"
        )


class Prompts(Namespace):
    """Submitting prompts: ``comfy.prompts``."""

    __slots__ = ("_history", "_jobs", "_queue", "_submit")

    def __init__(self, http: HttpClient, *, jobs: Jobs, queue: Queue, history: History) -> None:
        super().__init__(http)
        self._jobs = jobs
        self._queue = queue
        self._history = history
        self._submit: CompiledRoute | None = None  # compiled on the first submit

    async def info(self) -> PromptInfo:
        """The queue size (pending + running; per user on Comfy Cloud). Cancelling abandons it."""
        return await self._http.fetch(self._route("prompt.info"), decode_prompt_info)

    async def submit(
        self,
        prompt: Mapping[str, Any],
        *,
        prompt_id: str,
        client_id: str | None = None,
        number: float | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
        partial_execution_targets: Iterable[str] | None = None,
        preview_method: str | None = None,
        api_key_comfy_org: str | None = None,
    ) -> PromptResponse:
        """Queue an API-format ``prompt`` under ``prompt_id`` (mint one with :func:`new_prompt_id`).

        ``client_id`` routes the prompt's events to that WebSocket. ``number`` sets the priority
        (lower runs first) and ``front`` jumps the queue (both ignored by Comfy Cloud).
        ``extra_data`` is stored with the prompt; ``preview_method`` (``"auto"``, ``"latent2rgb"``,
        ``"taesd"``) turns sampler previews on and ``api_key_comfy_org`` lets partner nodes run;
        both go into ``extra_data``. ``partial_execution_targets`` runs only those output nodes.

        A failure that leaves the outcome unknown is reconciled by looking ``prompt_id`` up before
        anything is sent again (see the module docstring). Cancelling the call leaves the prompt
        queued or not; look ``prompt_id`` up to know.

        Raises:
            PromptValidationError: the server refused the prompt (400), with its node errors.
            ConfigurationError: ``prompt_id`` is not a canonical lowercase UUID, or the prompt is
                not JSON-serialisable.
            HTTPStatusError, TransportError: the submit failed, and the lookup found no prompt
                (or could not run).

        """
        _check_prompt_id(prompt_id)
        extra = dict(extra_data or {})
        if preview_method is not None:
            extra["preview_method"] = preview_method
        if api_key_comfy_org is not None:
            extra["api_key_comfy_org"] = api_key_comfy_org
        body: dict[str, Any] = {"prompt": prompt, "prompt_id": prompt_id}
        if client_id is not None:
            body["client_id"] = client_id
        if number is not None:
            body["number"] = number
        if front:
            body["front"] = True
        if extra:
            body["extra_data"] = extra
        if partial_execution_targets is not None:
            body["partial_execution_targets"] = list(partial_execution_targets)
        route = self._submit
        if route is None:
            route = self._submit = self._route("prompt.submit")
        failure: ComfyError
        try:
            response = await self._http.request(route, json=body, retry=False, allow=(400,))
        except (TransportError, ServerError) as error:
            failure = error
        else:
            return self._accepted(prompt_id, response)
        return await self._resend(prompt_id, body, failure)

    async def _resend(
        self, prompt_id: str, body: dict[str, Any], failure: ComfyError
    ) -> PromptResponse:
        """After a failed send: look the prompt up if it may have arrived, send it again if not."""
        policy = self._http.options.retry
        delays = policy.backoff.delays()
        attempt = 1
        while True:
            ambiguous = not isinstance(failure, ConnectError)  # a refused connection sent nothing
            if ambiguous or attempt <= policy.max_retries:
                await self._http.pause(next(delays))
            if ambiguous:
                found = await self._reconcile(prompt_id, failure)
                if found is not None:
                    return found
            if attempt > policy.max_retries:
                raise failure
            logger.info("prompt %s not queued (%s); sending it again", prompt_id, failure)
            attempt += 1
            route = self._route("prompt.submit")
            try:
                response = await self._http.request(route, json=body, retry=False, allow=(400,))
            except (TransportError, ServerError) as error:
                failure = error
            else:
                return self._accepted(prompt_id, response)

    async def _reconcile(self, prompt_id: str, failure: ComfyError) -> PromptResponse | None:
        logger.info("submit of %s failed ambiguously (%s); looking it up", prompt_id, failure)
        try:
            found = await self.locate(prompt_id)
        except ComfyError as error:
            # Unknown either way: sending again could queue it twice. Report the submit failure.
            logger.warning("cannot look prompt %s up (%s)", prompt_id, error)
            raise failure from error
        if found is not None:
            logger.info("prompt %s was queued despite the failure", prompt_id)
        return found

    async def locate(self, prompt_id: str) -> PromptResponse | None:
        """Whether the server holds this prompt (queued, running or finished), as a response.

        Asks the jobs API when the server has it, else the queue then history; each lookup runs
        twice before "absent" is believed. ``number`` is the queue number when the server says.
        Cancelling abandons the lookup.
        """
        for _ in range(_LOOKUP_PASSES):
            if await self._jobs.available():
                job = await self._jobs.get(prompt_id)
                if job is not None:
                    return PromptResponse(prompt_id=prompt_id, number=job.priority or 0)
                continue
            item = (await self._queue.get()).find(prompt_id)
            if item is not None:
                return PromptResponse(prompt_id=prompt_id, number=item.number)
            record = await self._history.get(prompt_id)
            if record is not None:
                entry = record if isinstance(record, HistoryEntry | CloudHistoryEntry) else None
                queued = None if entry is None else entry.prompt.number
                return PromptResponse(prompt_id=prompt_id, number=queued or 0)
        return None

    def _accepted(self, prompt_id: str, response: Response) -> PromptResponse:
        if response.status == 400:
            try:
                rejection = _REJECTION.decode(response.body)
            except msgspec.DecodeError:
                text = redact_text(response.body.decode("utf-8", "replace"), self._http.secrets)
                raise error_for_status(400, method="POST", url=response.url, body=text) from None
            raise PromptValidationError(
                rejection.error,
                rejection.node_errors,
                url=response.url,
                body=redact_text(response.body.decode("utf-8", "replace"), self._http.secrets),
            )
        accepted = self._http.decode(response, _RESPONSE.decode)
        if accepted.partially_rejected:
            logger.warning(
                "prompt %s queued with outputs rejected by validation (nodes %s)",
                accepted.prompt_id or prompt_id,
                ", ".join(sorted(accepted.node_errors)),
            )
        return accepted
