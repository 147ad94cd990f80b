"""Files of the fake server: input/output/temp folders, uploads, ``/view``, output naming.

Owns a base directory (a temporary one by default) with ``input``, ``output``, ``temp`` and
``user`` folders, and reproduces the real rules (protocol doc §2.2): uploads default to
``type=input``, dedupe by content, rename to ``stem (1).ext``, honour ``overwrite`` and
``subfolder``, refuse a subfolder escaping the base (400); ``/upload/mask`` applies the uploaded
image's alpha to the referenced original; ``/view`` defaults to ``type=output``, reads the
``name [type]`` annotation and answers 400/403/404 with empty bodies.

Without Pillow two things are approximated: ``preview=``/``channel=`` return the original bytes
with their own content type, and a mask that this module's small PNG decoder cannot read (or
whose size differs from the original) is stored as uploaded. Saved outputs are real PNGs.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from comfy_async.testing._images import decode_png, encode_png
from comfy_async.testing._responses import empty, json_response

if TYPE_CHECKING:
    import random

    from multidict import MultiDictProxy

__all__ = ["FileStore"]

TYPES: Final = ("input", "output", "temp")


class FileStore:
    """The folders of one fake server and the file routes over them."""

    def __init__(self, base: Path, *, rng: random.Random) -> None:
        self.base = base
        for name in (*TYPES, "user/default"):
            (base / name).mkdir(parents=True, exist_ok=True)
        # PreviewImage-like nodes save as ComfyUI_temp_<5 letters>_NNNNN_.png, one suffix per run.
        self.temp_prefix = "ComfyUI_temp_" + "".join(rng.choices(string.ascii_lowercase, k=5))

    def directory(self, type_: str | None) -> Path | None:
        """The folder of an ``input``/``output``/``temp`` type, else ``None``."""
        return self.base / type_ if type_ in TYPES else None

    def clear_temp(self) -> None:
        """Empty ``temp`` (a real server does at start-up)."""
        shutil.rmtree(self.base / "temp", ignore_errors=True)
        (self.base / "temp").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ outputs

    def save_image(self, type_: str, prefix: str, data: bytes) -> dict[str, str]:
        """Save ``data`` as ``<prefix>_NNNNN_.png`` with the next free counter; return its ref."""
        folder = self.base / type_
        subfolder, _, stem = prefix.replace("\\", "/").rpartition("/")
        target = (folder / subfolder).resolve()
        if not target.is_relative_to(folder.resolve()):
            target, subfolder = folder, ""
        target.mkdir(parents=True, exist_ok=True)
        counter = 1 + max(
            (_counter(p.name, stem) for p in target.iterdir()),
            default=0,
        )
        name = f"{stem}_{counter:05}_.png"
        (target / name).write_bytes(data)
        return {"filename": name, "subfolder": subfolder, "type": type_}

    def listing(self, type_: str) -> list[str]:
        """``/internal/files/{type}``: ``"name [type]"``, newest first."""
        folder = self.base / type_
        files = [p for p in folder.iterdir() if p.is_file()]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        return [f"{p.name} [{type_}]" for p in files]

    # ------------------------------------------------------------------ uploads

    async def upload(self, request: web.Request, *, mask: bool, cloud: bool) -> web.Response:
        """``POST /upload/image`` and ``/upload/mask``."""
        post = await request.post()
        return self._store_upload(post, mask=mask, cloud=cloud)

    def _store_upload(self, post: MultiDictProxy[Any], *, mask: bool, cloud: bool) -> web.Response:
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return empty(400)
        type_ = str(post.get("type") or "input")
        if type_ not in TYPES:
            type_ = "input"
        upload_dir = self.base / type_
        subfolder = "" if cloud else str(post.get("subfolder", ""))
        folder = Path(os.path.normpath(upload_dir / subfolder))
        filename = image.filename
        path = Path(os.path.abspath(folder / filename))
        if os.path.commonpath((upload_dir, path)) != str(upload_dir):
            return empty(400)
        folder.mkdir(parents=True, exist_ok=True)
        data = image.file.read()
        if mask:
            data = self._apply_mask(post.get("original_ref"), data)
        overwrite = str(post.get("overwrite", "")) in {"true", "1"} and not cloud
        if not overwrite:
            stem, ext = os.path.splitext(filename)
            index = 1
            while path.exists():
                if path.read_bytes() == data:
                    return json_response({"name": filename, "subfolder": subfolder, "type": type_})
                filename = f"{stem} ({index}){ext}"
                path = folder / filename
                index += 1
        path.write_bytes(data)
        return json_response({"name": filename, "subfolder": subfolder, "type": type_})

    def _apply_mask(self, ref: object, mask: bytes) -> bytes:
        """The original with the mask's alpha; the mask itself when that cannot be done."""
        try:
            original_ref = orjson.loads(str(ref))
            folder = self.directory(str(original_ref.get("type") or "input"))
            assert folder is not None
            original = folder / str(original_ref.get("subfolder", "")) / original_ref["filename"]
            base = decode_png(original.read_bytes())
            alpha = decode_png(mask)
        except (OSError, ValueError, KeyError, AttributeError, AssertionError, TypeError):
            return mask
        if (base.width, base.height) != (alpha.width, alpha.height):
            return mask
        rgba = bytearray(base.rgba)
        rgba[3::4] = alpha.rgba[3::4]
        return encode_png(base.width, base.height, bytes(rgba), alpha=True, text=base.text)

    # ------------------------------------------------------------------ /view

    def view(self, request: web.Request) -> web.StreamResponse:
        """``GET /view`` with the real server's error cases (empty bodies)."""
        path = self.resolve_view(request.query)
        if isinstance(path, int):
            return empty(path)
        headers = {"Content-Disposition": f'filename="{path.name}"'}
        plain = "preview" not in request.query and "channel" not in request.query
        if plain:
            headers["X-Content-Type-Options"] = "nosniff"
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type in {"text/html", "image/svg+xml", "text/javascript"}:
            content_type = "application/octet-stream"
            headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.Response(body=path.read_bytes(), content_type=content_type, headers=headers)

    def resolve_view(self, query: object) -> Path | int:
        """The file a ``/view`` query names, or the status code of its error."""
        params: dict[str, str] = dict(query)  # type: ignore[call-overload]
        filename = params.get("filename")
        if filename is None:
            return 404
        type_: str | None = None
        for candidate in TYPES:
            if filename.endswith(f" [{candidate}]"):
                filename, type_ = filename[: -len(candidate) - 3], candidate
        if not filename or filename.startswith("/") or ".." in filename:
            return 400
        folder = self.directory(type_ or params.get("type", "output"))
        if folder is None:
            return 400
        if "subfolder" in params:
            full = Path(os.path.abspath(folder / params["subfolder"]))
            if os.path.commonpath((full, folder)) != str(folder):
                return 403
            folder = full
        path = folder / os.path.basename(filename)
        return path if path.is_file() else 404


def _counter(name: str, stem: str) -> int:
    if not (name.startswith(stem + "_") and name.endswith("_.png")):
        return 0
    digits = name[len(stem) + 1 : -5]
    return int(digits) if digits.isdigit() else 0
