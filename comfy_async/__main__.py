"""``python -m comfy_async``: the ``comfy-async`` command line (:func:`comfy_async.cli.main`)."""

from __future__ import annotations

import sys

from comfy_async.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
