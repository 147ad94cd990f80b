"""How fast, and how lean, the node catalogue indexes a large ``/object_info`` dump.

Run ``python benchmarks/catalogue_index.py [--runs N] [--generate]`` in the project's
environment (``make test`` creates ``.venv``). Uses the shared 25 MB
synthetic dump (``shared/fixtures/object_info/synthetic_25MB_2650-nodes.json.gz``) when it is
present beside the checkout, else builds a comparable one from the recorded dump by inflating
its model-folder lists, the way the shared one was made.

Compares, as medians over several runs on the same decompressed buffer:

* ``bare split``  — ``msgspec.json.Decoder(dict[str, msgspec.Raw])``, the least any lazy index
  can do;
* ``Catalogue``   — ``Catalogue.from_bytes`` (that split, plus the catalogue's own bookkeeping);
* ``json.loads``  — decoding everything with the standard library.

Targets: Catalogue ≤ 1.5x the bare split, ≥ 5x faster than json.loads, and its peak traced
memory while building ≤ 1.05x what it keeps afterwards (the buffer its raw values reference,
plus the index).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import msgspec

from comfy_async.catalogue import Catalogue

ROOT = Path(__file__).resolve().parent.parent

SHARED_NAME = "synthetic_25MB_2650-nodes.json.gz"
RECORDED = ROOT / "tests" / "data" / "real_comfyui" / "object_info.json"
TARGET_BYTES = 25_000_000
FOLDER_INPUTS = {
    "LoraLoader": "lora_name",
    "CheckpointLoaderSimple": "ckpt_name",
    "LoadImage": "image",
    "VAELoader": "vae_name",
    "UNETLoader": "unet_name",
    "CLIPLoader": "clip_name",
    "ControlNetLoader": "control_net_name",
    "UpscaleModelLoader": "model_name",
}


def find_shared_dump() -> Path | None:
    for folder in ROOT.parents:
        candidate = folder / "shared" / "fixtures" / "object_info" / SHARED_NAME
        if candidate.is_file():
            return candidate
    return None


def _choices(spec: list[object]) -> list[object] | None:
    if spec and isinstance(spec[0], list):
        return spec[0]
    options = spec[1] if len(spec) > 1 else None
    if spec and spec[0] == "COMBO" and isinstance(options, dict):
        found = options.get("options")
        return found if isinstance(found, list) else None
    return None


def generate_dump() -> bytes:
    """A comparable dump: the recorded one, its folder-like combos filled with many file names."""
    data = json.loads(RECORDED.read_text())
    targets: list[list[object]] = []
    for node in data.values():
        for section in ("required", "optional"):
            for name, spec in (node.get("input", {}).get(section) or {}).items():
                choices = _choices(spec)
                if choices is not None and (
                    name in FOLDER_INPUTS.values() or name.endswith(("_name", "_path"))
                ):
                    targets.append(choices)
    size = len(json.dumps(data))
    count = 0
    while size < TARGET_BYTES:
        count += 1
        item = f"models/family_{count % 97:02d}/checkpoint_{count:06d}_v{count % 7}.safetensors"
        for choices in targets:
            choices.append(item)
        size += (len(item) + 4) * len(targets)
    return json.dumps(data).encode()


def load_buffer(*, generate: bool) -> tuple[bytes, str]:
    shared = None if generate else find_shared_dump()
    if shared is not None:
        return gzip.decompress(shared.read_bytes()), f"shared {SHARED_NAME}"
    reason = "as asked" if generate else "the shared dump is absent"
    return generate_dump(), f"generated from the recorded dump ({reason})"


def median_seconds(action: object, runs: int) -> float:
    assert callable(action)
    action()  # warm up
    times: list[float] = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
        del result
    return statistics.median(times)


def traced_build(path: Path) -> tuple[int, int]:
    """Peak traced bytes while reading and indexing ``path``, and the bytes kept afterwards."""
    gc.collect()
    tracemalloc.start()
    try:
        catalogue = Catalogue.from_file(path)
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(catalogue) > 0
    return peak, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per contender")
    parser.add_argument(
        "--generate", action="store_true", help="build the dump even if the shared one exists"
    )
    args = parser.parse_args()

    buf, source = load_buffer(generate=args.generate)
    bare = msgspec.json.Decoder(dict[str, msgspec.Raw])
    classes = len(bare.decode(buf))
    print(f"dump: {source}: {len(buf) / 1e6:.1f} MB, {classes} classes; {args.runs} runs each")

    t_bare = median_seconds(lambda: bare.decode(buf), args.runs)
    t_catalogue = median_seconds(lambda: Catalogue.from_bytes(buf), args.runs)
    t_json = median_seconds(lambda: json.loads(buf), max(3, args.runs // 2))

    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "object_info.json"
        plain.write_bytes(buf)
        packed = Path(folder) / "object_info.json.gz"
        packed.write_bytes(gzip.compress(buf, compresslevel=6))
        peak, kept = traced_build(plain)
        peak_gz, kept_gz = traced_build(packed)

    print()
    print(f"{'contender':<28}{'median ms':>12}{'vs bare split':>16}")
    print(f"{'-' * 56}")
    for name, seconds in (
        ("bare split (dict[str, Raw])", t_bare),
        ("Catalogue.from_bytes", t_catalogue),
        ("json.loads", t_json),
    ):
        print(f"{name:<28}{seconds * 1e3:>12.2f}{seconds / t_bare:>15.2f}x")
    print()
    print(f"{'memory (tracemalloc)':<28}{'peak MB':>12}{'kept MB':>12}{'peak/kept':>12}")
    print(f"{'-' * 64}")
    for name, top, held in (
        ("Catalogue.from_file (.json)", peak, kept),
        ("Catalogue.from_file (.gz)", peak_gz, kept_gz),
    ):
        print(f"{name:<28}{top / 1e6:>12.2f}{held / 1e6:>12.2f}{top / held:>11.3f}x")

    ratio_bare = t_catalogue / t_bare
    ratio_json = t_json / t_catalogue
    ratio_memory = max(peak / kept, peak_gz / kept_gz)
    targets = (
        (f"index build <= 1.5x bare split: {ratio_bare:.2f}x", ratio_bare <= 1.5),
        (f"index build >= 5x faster than json.loads: {ratio_json:.1f}x", ratio_json >= 5),
        (f"peak memory <= 1.05x kept: {ratio_memory:.3f}x", ratio_memory <= 1.05),
    )
    print()
    for text, passed in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    return 0 if all(passed for _, passed in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
