"""A Comfy API v2 server as a pool member: what the scheduler asks of it, in the contract's terms.

The v2 contract offers jobs and assets, nothing about the server itself, so a v2 member differs
from a native one in what the pool can know:

* **capability** — there is no list of node classes or models: a v2 server is assumed able to
  run any workflow until it refuses one as ``invalid_workflow``; those needs are then remembered
  as refused there (:attr:`V2Server.refused`) and go to servers that can run them (``tags`` pin
  work explicitly);
* **load** — there is no queue or jobs list: its load is the pool's jobs there (``max_queue``
  bounds it); other clients' jobs on it are invisible;
* **health** — a probe reads a job id no one has: ``404`` (or ``429``) is a server that answers
  and accepts the credentials;
* **placement** — a job is POSTed with its pool prompt id as the ``Idempotency-Key``
  (:meth:`~comfy_async._live.v2_backend.ApiV2Session.adopt`) and followed over its SSE stream;
* **submission outcomes** — each attempt is classified (:func:`attempt_outcome`): refused,
  never sent (the connection never opened, or the server refused before creating anything:
  the job may go anywhere), or *unknown* (the answer was lost after the request went out).
  An unknown one is never sent to another server while this one may still answer: its key is
  presented again here; a key found claimed means the first attempt created the job, which the
  contract gives no way to find by key;
* **failover** — a job moved off it is remembered with its server job and cancelled there by its
  ``cancel`` link when the server answers again, before it gets new work.
"""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Protocol

from comfy_async.errors import (
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ComfyError,
    ConflictError,
    ConnectError,
    HTTPStatusError,
    NotFoundError,
    PaymentRequiredError,
    PromptValidationError,
    RateLimitedError,
    ServiceUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._live.v2_backend import ApiV2Session
    from comfy_async._pool.needs import Needs
    from comfy_async.job import Job
    from comfy_async.models.api_v2 import V2Job

__all__ = ["Attempt", "V2Client", "V2Server", "attempt_outcome", "learns_from"]


class V2Client(Protocol):
    """What a v2 member needs of its client (a ``ComfyClient.v2`` session)."""

    _api_v2: ApiV2Session | None

    @property
    def _v2(self) -> ApiV2Session | None: ...


class Attempt(enum.Enum):
    """What one submission attempt to a v2 server tells about the job there."""

    REFUSED = "refused"
    """Refused before anything was created (the key is released): its outcome, or a lesson."""
    CLAIMED = "claimed"
    """The key was claimed already: an earlier attempt created the job there."""
    NOT_SENT = "not sent"
    """Nothing was created: the connection never opened, or the server was busy or failing."""
    BUSY = "busy"
    """Nothing was created: the server asked to come back later (``429``/``503``)."""
    UNKNOWN = "unknown"
    """The request went out and its answer was lost: the job may exist there."""


def attempt_outcome(error: ComfyError) -> Attempt:
    """Classify a failed submission attempt by what it says about the job on the server."""
    if isinstance(error, ConflictError):  # what the session makes of idempotency_key_reuse
        return Attempt.CLAIMED
    if isinstance(error, RateLimitedError | ServiceUnavailableError):
        return Attempt.BUSY
    if isinstance(error, BadRequestError):
        return Attempt.REFUSED
    never_sent = (ConnectError, ClientClosedError)  # the request never left
    refused = (AuthenticationError, PaymentRequiredError, NotFoundError)  # before creating
    if isinstance(error, never_sent + refused):
        return Attempt.NOT_SENT
    if isinstance(error, HTTPStatusError) and error.status < 500:
        return Attempt.NOT_SENT
    return Attempt.UNKNOWN  # a lost connection, a timeout, a 5xx: it may have been created


def learns_from(error: ComfyError) -> bool:
    """Whether a refusal says the server cannot run the workflow (not that the graph is bad)."""
    return isinstance(error, PromptValidationError) and error.error_type == "invalid_workflow"


class V2Server:
    """The pool's view of one v2 server: its session, the jobs it holds, what it refused."""

    def __init__(self, client: V2Client) -> None:
        self.client = client
        self.refused: dict[Needs, list[str]] = {}
        """Needs this server refused as ``invalid_workflow``, with why."""
        self.placed: dict[str, V2Job] = {}
        """The server's job of each pool job placed here (by pool prompt id)."""
        self.moved: dict[str, V2Job] = {}
        """The server jobs of pool jobs moved elsewhere, to cancel here once it answers."""
        self._purging = False

    @property
    def session(self) -> ApiV2Session:
        """The client's v2 session (the job backend of the jobs placed here)."""
        session = self.client._v2
        assert session is not None, "a v2 member has a v2 client"
        return session

    def lacks(self, needs: Needs) -> list[str]:
        """What it lacks for ``needs``: nothing known, unless it refused them before."""
        return self.refused.get(needs, [])

    def refuse(self, needs: Needs, error: ComfyError) -> None:
        """It refused a workflow with ``needs``: send it no more of them."""
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.refused[needs] = [f"refused the workflow: {reason}"]

    async def probe(self) -> None:
        """Read a job id no one has: a ``404`` is a healthy answer.

        Raises:
            ComfyError: it does not answer, fails, or refuses the credentials.

        """
        session = self.session
        url = session._entry(f"jobs/{uuid.uuid4()}")
        try:
            await session.http.send("GET", url, retry=False)
        except (NotFoundError, RateLimitedError):
            return

    async def submit(
        self, job: Job, prompt: Mapping[str, object], extra_data: Mapping[str, object] | None
    ) -> V2Job:
        """One attempt to run ``job`` here (see ``ApiV2Session.adopt``); the server's job."""
        v2 = await self.session.adopt(job, prompt, extra_data=extra_data)
        if not job.done():
            self.placed[job.prompt_id] = v2
        return v2

    def ended(self, job: Job) -> None:
        """A job placed here ended."""
        self.placed.pop(job.prompt_id, None)
        session = self.client._api_v2
        if session is not None:
            session.ended(job)

    def release(self, job: Job) -> None:
        """A job moves elsewhere: stop following it here, and cancel it here later."""
        session = self.client._api_v2
        if session is not None:
            session.release(job)
        v2 = self.placed.pop(job.prompt_id, None)
        if v2 is not None:
            self.moved[job.prompt_id] = v2

    async def purge(self) -> int:
        """Cancel the server jobs of pool jobs moved elsewhere; how many it cancelled.

        Raises:
            ComfyError: a cancel failed (the server is not back yet); the rest stay to cancel.

        """
        if self._purging:
            return 0  # another purge is under way
        self._purging = True
        purged = 0
        try:
            for prompt_id, v2 in list(self.moved.items()):
                if await self.session.cancel_job(v2):
                    purged += 1
                self.moved.pop(prompt_id, None)
        finally:
            self._purging = False
        return purged
