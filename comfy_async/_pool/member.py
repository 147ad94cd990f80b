"""One server of a pool: its client, health, load, warm models and figures.

A member learns by watching its own jobs: how long a job takes there (a moving average of the
server's own start/finish times), how much longer a job that had to load its models took (the
load cost), and which models are warm (loaded by the jobs it ran, the most recent first, as many
as it was seen to keep). A job that was expected warm but ran as slowly as a cold one shows the
server evicted something: it is then assumed to keep one model set fewer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from comfy_async._pool.breaker import Breaker, Health
from comfy_async._pool.needs import missing_on
from comfy_async._pool.v2_server import V2Server

if TYPE_CHECKING:
    from comfy_async._live.session import LiveSession
    from comfy_async._live.v2_backend import ApiV2Session
    from comfy_async._pool.held import Entry
    from comfy_async._pool.needs import Needs
    from comfy_async._transport.rest.prompts import Prompts
    from comfy_async._transport.rest.queue import Queue
    from comfy_async.catalogue import Catalogue
    from comfy_async.job import Job, JobBackend

__all__ = ["Member", "MemberSettings", "ServerClient"]


class ServerClient(Protocol):
    """What a pool needs of a server's client (a :class:`~comfy_async.client.ComfyClient`)."""

    _live_session: LiveSession | None
    _api_v2_token: str | None
    _api_v2: ApiV2Session | None

    @property
    def _live(self) -> LiveSession: ...

    @property
    def _v2(self) -> ApiV2Session | None: ...

    @property
    def base_url(self) -> str: ...

    @property
    def prompts(self) -> Prompts: ...

    @property
    def queue(self) -> Queue: ...

    async def nodes(self, *, refresh: bool = False) -> Catalogue: ...

    async def attach(self, prompt_id: str, *, timeout: float | None = None) -> Job: ...

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None: ...


# Weight of the newest observation in the moving averages.
_SMOOTHING = 0.2


@dataclass(frozen=True, slots=True)
class MemberSettings:
    """A server's options in the pool (see :class:`~comfy_async.pool.PoolServer`)."""

    name: str
    weight: float
    max_queue: int
    tags: frozenset[str]
    warm_slots: int


class Member:
    """One server of the pool and what the pool knows of it."""

    def __init__(
        self,
        client: ServerClient,
        settings: MemberSettings,
        *,
        owned: bool,
        failures_to_trip: int,
        prior_duration: float,
        prior_load: float,
    ) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.name
        self.owned = owned
        """Whether the pool made the client (and closes it)."""
        self.v2 = V2Server(client) if client._api_v2_token is not None else None
        """What is particular to a Comfy API v2 server (``None``: a native one)."""
        self.breaker = Breaker(failures_to_trip=failures_to_trip)
        self.entries: dict[str, Entry] = {}
        """The pool's jobs placed here and not ended, by prompt id."""
        self.external = 0
        """Prompts the server holds that are not the pool's (other clients share the server)."""
        self.catalogue: Catalogue | None = None
        self.warm: OrderedDict[frozenset[str], None] = OrderedDict()
        self.warm_slots = settings.warm_slots
        self.purge: dict[str, bool] = {}
        """Prompt ids moved elsewhere → whether they had started: cleared here on return."""
        self.done = 0
        self.failed = 0
        self.moved_away = 0
        self.model_loads = 0
        self._duration: float | None = None
        self._warm_duration: float | None = None
        self._load: float | None = None
        self._cold_waiting: list[float] = []  # cold durations seen before a warm one
        self._prior_duration = prior_duration / settings.weight
        self._prior_load = prior_load
        self.paused: str | None = None
        """Why it gets no new job for now though healthy (it drains to restart), if it does not."""
        self.rebooting = False
        """Whether it is restarting on the pool's request (a planned outage: not probed)."""
        self.socket_down_since: float | None = None
        self.connects_seen = 0
        """WebSockets its session had opened at the last look (a rise is a reconnect)."""

    # ------------------------------------------------------------------ state

    @property
    def health(self) -> Health:
        """Whether it gets jobs."""
        return self.breaker.state

    @property
    def room(self) -> int:
        """How many more jobs it should be sent now (its queue kept short)."""
        if self.breaker.state is not Health.UP or self.paused is not None:
            return 0
        return max(0, self.settings.max_queue - len(self.entries) - self.external)

    @property
    def mean_duration(self) -> float:
        """Seconds a job takes here (observed; the pool's prior until the first one ends)."""
        return self._duration if self._duration is not None else self._prior_duration

    @property
    def load_cost(self) -> float:
        """Seconds loading a job's models adds here (observed, else the pool's estimate)."""
        return self._load if self._load is not None else self._prior_load

    @property
    def warm_models(self) -> frozenset[str]:
        """The models believed loaded here."""
        names: set[str] = set()
        for models in self.warm:
            names |= models
        return frozenset(names)

    @property
    def backend(self) -> JobBackend:
        """What its jobs ask the server (look-ups, cancel, downloads)."""
        if self.v2 is not None:
            return self.v2.session
        return self.client._live.backend

    def lacks(self, needs: Needs) -> list[str] | None:
        """What it lacks to run ``needs`` (``None``: not known yet, its catalogue unread).

        A v2 server has no catalogue: it lacks nothing, unless it refused these needs before.
        """
        if self.v2 is not None:
            return self.v2.lacks(needs)
        if self.catalogue is None:
            return None
        return missing_on(needs, self.catalogue)

    # ------------------------------------------------------------------ learning

    def placed(self, entry: Entry) -> None:
        """``entry`` is sent here: note whether its models must load, and that they will be."""
        models = entry.demand.needs.model_names
        entry.cold = bool(models) and not models <= self.warm_models
        if models:
            self.warm[models] = None
            self.warm.move_to_end(models)
            while len(self.warm) > max(1, self.warm_slots):
                self.warm.popitem(last=False)
        if entry.cold:
            self.model_loads += 1

    def finished(self, entry: Entry, duration: float | None) -> float | None:
        """A job ended well here after ``duration`` seconds; return a load cost it showed."""
        self.done += 1
        if duration is None or duration < 0:
            return None
        self._duration = _average(self._duration, duration)
        if not entry.cold:
            warm = self._warm_duration
            load = self._load
            if (
                warm is not None
                and load is not None
                and load > warm / 4
                and duration > warm + load / 2
            ):
                # expected warm, ran cold: the server evicted a model set the pool thought loaded
                self.warm_slots = max(1, min(self.warm_slots, len(self.warm)) - 1)
                self.model_loads += 1
                return None
            self._warm_duration = _average(warm, duration)
            waiting, self._cold_waiting = self._cold_waiting, []
            return self._measure_loads(waiting)
        if self._warm_duration is None:
            self._cold_waiting.append(duration)  # measured once a warm job gives the baseline
            return None
        return self._measure_loads([duration])

    def _measure_loads(self, cold_durations: list[float]) -> float | None:
        warm = self._warm_duration
        if warm is None or not cold_durations:
            return None
        for duration in cold_durations:
            self._load = _average(self._load, max(0.0, duration - warm))
        return self._load

    def learn_load(self, load: float) -> None:
        """Another server measured a load: until this one measures its own, use it."""
        if self._load is None:
            self._prior_load = load

    def forget_warm(self) -> None:
        """The server restarted or freed its memory: nothing is warm."""
        self.warm.clear()


def _average(current: float | None, sample: float) -> float:
    return sample if current is None else current + _SMOOTHING * (sample - current)
