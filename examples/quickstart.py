"""Submit a workflow, stream its typed events, then save its outputs.

python examples/quickstart.py                 # against the embedded fake server
python examples/quickstart.py --url http://127.0.0.1:8188 --workflow my_api.json
"""

from __future__ import annotations

import asyncio
import sys

from _server import arguments, server_url

from comfy_async import ComfyClient, ComfyError, Workflow
from comfy_async.events import Executing, PreviewImage, Progress, ProgressText


async def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__ or "").parse_args(argv)
    async with server_url(args.url) as url, ComfyClient(url) as comfy:
        workflow = Workflow.from_file(args.workflow, catalogue=await comfy.nodes())
        workflow.randomize_seeds()
        try:
            job = await comfy.submit(workflow, validate=True, timeout=300)
        except ComfyError as error:
            print(f"refused: {error}", file=sys.stderr)
            return 1
        print(f"queued {job.prompt_id}")
        async for event in job:
            match event:
                case Executing(node=str(node)):
                    print(f"  running node {node}")
                case Progress(value=value, max=total):
                    print(f"  step {value}/{total}  (job {job.progress.fraction:.0%})")
                case PreviewImage(mime=mime):
                    print(f"  preview {mime}, {len(event.image)} bytes")
                case ProgressText(text=text):
                    print(f"  text: {text}")
                case _:
                    pass
        try:
            result = await job.result()
        except ComfyError as error:
            print(f"failed: {error}", file=sys.stderr)
            return 1
        for path in await result.save("example-output"):
            print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
