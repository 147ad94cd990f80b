"""P3 decode: object_info and history bodies, json.loads / orjson / msgspec / ours; time and memory.

Bodies (read in place; the shared ones are skipped when absent):

* ``/object_info``: the recorded real server (``tests/data/real_comfyui``), the real captures in
  ``shared/fixtures/object_info/*.json`` and the 25 MB synthetic dump (built from the recorded one
  when the shared file is absent, as ``catalogue_index.py`` does);
* ``/history``: ``shared/fixtures/history/history_200-entries.json.gz``.

Contenders, as medians on the same in-memory buffer: ``json.loads``, ``orjson.loads``,
``msgspec`` untyped, a bare lazy split (``msgspec.json.Decoder(dict[str, msgspec.Raw])``, the least
any lazy decoder can do), and ours: the lazy :class:`~comfy_async.catalogue.Catalogue`
(``from_bytes``), one typed node (``catalogue["KSampler"]``, the detail a user asks for) and, for
history, the typed :func:`~comfy_async.models.decode_history` that keeps each graph raw. Peak
memory is tracemalloc's peak while decoding.

Targets (the 25 MB dump, with ``catalogue_index.py``'s measurements): catalogue index ≤ 1.5× the
bare split and ≥ 5× faster than ``json.loads``; peak memory while building ≤ 1.05× what it keeps;
typed history ≥ 40 % of the lazy split's rate.

Run: ``python benchmarks/p3_decode.py [--quick] [--runs N]``.
"""

from __future__ import annotations

import gc
import gzip
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
import orjson

from benchmarks._common import RECORDED_OBJECT_INFO, Report, find_shared, main_of, median
from benchmarks.catalogue_index import load_buffer, traced_build
from comfy_async.catalogue import Catalogue
from comfy_async.models import decode_history

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

_SPLIT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_UNTYPED = msgspec.json.Decoder()


def _orjson(buf: bytes) -> object:
    try:
        return orjson.loads(buf)
    except orjson.JSONDecodeError:  # integers beyond 64 bits (custom nodes publish them)
        return "orjson refuses this body"


def _typed_node(buf: bytes) -> object:
    catalogue = Catalogue.from_bytes(buf)
    name = "KSampler" if "KSampler" in catalogue else next(iter(catalogue))
    return catalogue[name]


OBJECT_INFO: dict[str, Callable[[bytes], object]] = {
    "json.loads": json.loads,
    "orjson.loads": _orjson,
    "msgspec untyped": _UNTYPED.decode,
    "bare lazy split": _SPLIT.decode,
    "ours: Catalogue.from_bytes": Catalogue.from_bytes,
    "ours: + one typed node": _typed_node,
}
HISTORY: dict[str, Callable[[bytes], object]] = {
    "json.loads": json.loads,
    "orjson.loads": _orjson,
    "msgspec untyped": _UNTYPED.decode,
    "bare lazy split": _SPLIT.decode,
    "ours: decode_history (graph raw)": decode_history,
}


def time_it(action: Callable[[], object], runs: int, budget: float) -> float:
    """Median seconds of ``action`` over up to ``runs`` runs (fewer if ``budget`` s run out)."""
    action()  # warm up
    times: list[float] = []
    deadline = time.perf_counter() + budget
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
        del result
        if time.perf_counter() > deadline and len(times) >= 3:
            break
    return median(times)


def peak_memory(action: Callable[[], object]) -> tuple[int, int]:
    """tracemalloc's peak while running ``action``, and what is still held right after."""
    gc.collect()
    tracemalloc.start()
    try:
        result = action()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak, kept


def bodies(quick: bool) -> list[tuple[str, str, bytes]]:
    """``(kind, name, body)`` of every body measured (object_info first, then history)."""
    found: list[tuple[str, str, bytes]] = [
        ("object_info", "recorded real server", RECORDED_OBJECT_INFO.read_bytes())
    ]
    folder = find_shared("object_info")
    if folder is not None and not quick:
        found += [
            ("object_info", path.stem, path.read_bytes()) for path in sorted(folder.glob("*.json"))
        ]
    if not quick:
        buf, source = load_buffer(generate=False)
        found.append(("object_info", f"25 MB ({source.split(':')[0]})", buf))
    history = find_shared("history", "history_200-entries.json.gz")
    if history is not None:
        found.append(("history", "200 entries", gzip.decompress(history.read_bytes())))
    return found


def body(args: argparse.Namespace, report: Report) -> None:
    runs = 2 if args.quick else args.runs
    budget = 0.5 if args.quick else 8.0
    results: dict[str, dict[str, Any]] = {}
    for kind, name, buf in bodies(args.quick):
        contenders = OBJECT_INFO if kind == "object_info" else HISTORY
        rows: dict[str, Any] = {}
        for label, decode in contenders.items():
            seconds = time_it(lambda decode=decode, buf=buf: decode(buf), runs, budget)
            peak, _ = peak_memory(lambda decode=decode, buf=buf: decode(buf))
            rows[label] = {"seconds": seconds, "peak": peak}
        results[f"{kind}: {name}"] = {"bytes": len(buf), "kind": kind, "rows": rows}
        split = rows["bare lazy split"]["seconds"]
        table = report.table(
            f"{kind} — {name} ({len(buf) / 1e6:.1f} MB), median of up to {runs}",
            "decoder",
            "ms",
            "MB/s",
            "vs bare split",
            "peak MB",
        )
        for label, row in rows.items():
            table.add(
                label,
                f"{row['seconds'] * 1e3:.2f}",
                f"{len(buf) / row['seconds'] / 1e6:,.0f}",
                f"{row['seconds'] / split:.2f}x",
                f"{row['peak'] / 1e6:.1f}",
            )
    report.raw = {"bodies": results}

    big = next((key for key in results if "25 MB" in key), None) or next(iter(results))
    rows = results[big]["rows"]
    catalogue = rows["ours: Catalogue.from_bytes"]["seconds"]
    report.target(
        f"P3 catalogue index / bare split ({big.split(': ', 1)[1]})",
        catalogue / rows["bare lazy split"]["seconds"],
        "<=",
        1.5,
    )
    report.target(
        "P3 catalogue index speed-up over json.loads",
        rows["json.loads"]["seconds"] / catalogue,
        ">=",
        5.0,
    )
    buf = next(
        b for kind, name, b in bodies(args.quick) if big.endswith(name) and kind == "object_info"
    )
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "object_info.json"
        plain.write_bytes(buf)
        packed = Path(folder) / "object_info.json.gz"
        packed.write_bytes(gzip.compress(buf, compresslevel=6))
        memory = [traced_build(plain), traced_build(packed)]
    memory_table = report.table(
        "Catalogue.from_file: peak traced memory while building vs what it keeps",
        "file",
        "peak MB",
        "kept MB",
        "peak/kept",
    )
    for label, (peak, kept) in zip((".json", ".json.gz"), memory, strict=True):
        memory_table.add(label, f"{peak / 1e6:.2f}", f"{kept / 1e6:.2f}", f"{peak / kept:.3f}x")
    report.target(
        "P3 catalogue peak memory / kept", max(peak / kept for peak, kept in memory), "<=", 1.05
    )
    history = next((key for key in results if key.startswith("history")), None)
    if history is None:
        report.notes.append("history fixture absent: the history target was not measured")
        return
    rows = results[history]["rows"]
    report.target(
        "P3 typed history rate / lazy split rate",
        rows["bare lazy split"]["seconds"] / rows["ours: decode_history (graph raw)"]["seconds"],
        ">=",
        0.40,
        "%",
    )


main = main_of(__doc__.splitlines()[0], 9, body, name="p3_decode", title="P3 decode")

if __name__ == "__main__":
    raise SystemExit(main(None))
