"""The part of an image bot that does not depend on the chat platform.

``Imagine`` runs one ``/imagine`` request: it holds the user's job in a fair line (admission: a
tenant per user, one picture at a time), tells the user where they stand, shows the newest
preview as often as the platform allows, and hands back the finished images. The Discord and
Telegram examples adapt its ``show`` callback to their APIs; ``cancel`` serves ``/cancel``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from comfy_async import (
    AdmissionPolicy,
    AdmissionRefused,
    ComfyClient,
    ComfyError,
    Job,
    JobState,
    TenantLimits,
    Workflow,
)

#: ``show(text, image)``: edit the user's message (``image``: PNG/JPEG bytes or ``None``).
Show = Callable[[str, "bytes | None"], Awaitable[None]]

WAITING = (JobState.HELD, JobState.ADMITTED, JobState.SUBMITTING, JobState.QUEUED)
SD15 = Path(__file__).parent / "workflows" / "sd15_txt2img_api.json"


def ordinal(place: int) -> str:
    """1st, 2nd, 3rd, 4th… 11th, 12th, 13th… 21st."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


@dataclass
class Outcome:
    """What a request came to: the images, or the reason there are none."""

    images: list[bytes]
    error: str | None = None


class Imagine:
    """Image requests of many users against one ComfyUI server, fair between them."""

    def __init__(self, url: str, *, edits_per_second: float = 1.0, workflow: Path = SD15) -> None:
        admission = AdmissionPolicy(limits=TenantLimits(max_in_flight=1), max_queue=2)
        self.comfy = ComfyClient(url, admission=admission)
        self.interval = 1.0 / edits_per_second
        self.workflow_path = workflow
        self.jobs: dict[str, Job] = {}
        self._base: Workflow | None = None

    async def aclose(self) -> None:
        """Cancel what is still running and close the session."""
        await self.comfy.aclose()

    async def _workflow(self, prompt: str) -> Workflow:
        if self._base is None:
            self._base = Workflow.from_file(self.workflow_path, catalogue=await self.comfy.nodes())
        workflow = self._base.copy()
        positive = workflow.find(class_type="CLIPTextEncode")[0]
        workflow.set(positive, text=prompt)
        workflow.randomize_seeds()
        return workflow

    async def run(self, user: str, prompt: str, show: Show) -> Outcome:
        """Serve one request of ``user``: queue, place in line, previews, the images."""
        try:
            job = await self.comfy.submit(
                await self._workflow(prompt),
                tenant=user,
                extra_data={"preview_method": "auto"},
                timeout=600,
            )
        except AdmissionRefused:
            await show("You already have a picture in the making: one at a time, please.", None)
            return Outcome([], "busy")
        self.jobs[user] = job
        try:
            async with job:  # leaving early (the bot stops) cancels it on the server
                await self._wait_in_line(job, show)
                last = 0.0
                async for preview in job.previews(latest_only=True):
                    now = time.monotonic()
                    if now - last >= self.interval:  # the platform's edit rate
                        last = now
                        await show(f"{job.progress.fraction:.0%}", bytes(preview.image))
                result = await job.result()
            images = [await self.comfy.files.read(file) for file in result.files]
            return Outcome(images)
        except ComfyError as error:
            return Outcome([], str(error))
        finally:
            self.jobs.pop(user, None)

    async def _wait_in_line(self, job: Job, show: Show) -> None:
        shown = None
        while job.state in WAITING and (place := job.position) is not None:
            if place != shown:
                await show(f"You are {ordinal(place)} in line.", None)
                shown = place
            await asyncio.sleep(self.interval)

    async def cancel(self, user: str) -> bool:
        """``/cancel``: stop the user's request (held or running); whether there was one."""
        job = self.jobs.get(user)
        if job is None:
            return False
        await job.cancel()
        return True
