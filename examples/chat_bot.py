"""A chat bot's pattern: many users, one job each, one message edited with the newest preview.

A chat API allows a message edit about once a second. Each job's previews are read with
``latest_only=True``, so however fast the server produces them the bot shows the newest one and
skips the rest; meanwhile the session's one socket keeps every job's events flowing.

Admission keeps it fair: each user is a tenant with one picture at a time (asking for a second
one is refused at once), the server's queue is kept short, and users take turns; while a job
waits the bot says where it stands ("you are 3rd in line").

    python examples/chat_bot.py --users 5
"""

from __future__ import annotations

import asyncio
import sys

from _server import arguments, server_url

from comfy_async import (
    AdmissionPolicy,
    AdmissionRefused,
    ComfyClient,
    ComfyError,
    JobState,
    TenantLimits,
    Workflow,
)

WAITING = (JobState.HELD, JobState.ADMITTED, JobState.SUBMITTING, JobState.QUEUED)


def ordinal(place: int) -> str:
    """1st, 2nd, 3rd, 4th… 11th, 12th, 13th… 21st."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


class Message:
    """Stands in for a chat message that can be edited at a limited rate."""

    def __init__(self, user: str, edits_per_second: float) -> None:
        self.user = user
        self.interval = 1.0 / edits_per_second
        self.edits = 0

    async def edit(self, text: str, image: bytes | None = None) -> None:
        self.edits += 1
        size = f", image {len(image)} bytes" if image else ""
        print(f"[{self.user}] {text}{size}")
        await asyncio.sleep(self.interval)  # the chat API's rate limit


async def serve_user(comfy: ComfyClient, base: Workflow, user: str, rate: float) -> bool:
    message = Message(user, rate)
    workflow = base.copy()
    workflow.randomize_seeds()
    job = await comfy.submit(
        workflow, extra_data={"preview_method": "auto"}, timeout=300, tenant=user
    )
    try:  # the same user asks again before the first picture is done
        await comfy.submit(base.copy(), tenant=user)
    except AdmissionRefused:
        await message.edit("one picture at a time, please")
    # The job's scope: if editing the message fails (the user deleted it, the bot is stopping),
    # the job is cancelled on the server instead of running for nobody.
    async with job:
        shown = None
        while job.state in WAITING and (place := job.position) is not None:
            if place != shown:  # edit only when the place changes
                await message.edit(f"you are {ordinal(place)} in line")
                shown = place
            else:
                await asyncio.sleep(message.interval)
        async for preview in job.previews(latest_only=True):
            await message.edit(f"{job.progress.fraction:.0%}", bytes(preview.image))
        try:
            result = await job.result()
        except ComfyError as error:
            await message.edit(f"sorry: {error}")
            return False
    await message.edit(f"done: {', '.join(file.filename for file in result.files)}")
    return True


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--edits-per-second", type=float, default=20.0)
    args = parser.parse_args(argv)
    # One job per user at a time; the server is sent one job at a time, the rest wait here.
    admission = AdmissionPolicy(limits=TenantLimits(max_in_flight=1), max_queue=1)
    async with server_url(args.url) as url, ComfyClient(url, admission=admission) as comfy:
        base = Workflow.from_file(args.workflow, catalogue=await comfy.nodes())
        users = [f"user{n}" for n in range(args.users)]
        served = await asyncio.gather(
            *(serve_user(comfy, base, user, args.edits_per_second) for user in users)
        )
    print(f"{sum(served)}/{len(users)} users served")
    return 0 if all(served) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
