"""The graph side of execution: links, cache keys and the order nodes run in (protocol doc §5).

* :func:`is_link` — ``[node_id, output_index]`` inputs;
* :func:`signatures` — a cache key per node: its class and inputs, links replaced by the upstream
  node's key (node ids do not matter, so identical sub-graphs hit the cache);
* :func:`execution_order` — dependencies first; among ready nodes an output node first, then a
  node feeding an output, then one two steps away (the real server's "UX-friendly" preference),
  so independent branches do not run in prompt order. Cached dependencies are not scheduled.

Pure functions; no I/O, no events.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["execution_order", "is_link", "signatures"]


def is_link(value: object) -> TypeGuard[list[Any]]:
    """A ``[node_id, output_index]`` input."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _deps(graph: dict[str, object], node_id: str) -> list[str]:
    node = graph.get(node_id)
    inputs = node.get("inputs") if isinstance(node, dict) else None
    if not isinstance(inputs, dict):
        return []
    return [v[0] for v in inputs.values() if is_link(v) and v[0] in graph]


def signatures(graph: dict[str, object]) -> dict[str, str]:
    """Cache keys: class and inputs, with links replaced by the upstream node's key."""
    memo: dict[str, str] = {}

    def key(node_id: str, stack: frozenset[str]) -> str:
        if node_id in memo:
            return memo[node_id]
        node = graph.get(node_id)
        if not isinstance(node, dict) or node_id in stack:
            return f"missing:{node_id}"
        raw = node.get("inputs")
        inputs: dict[str, object] = raw if isinstance(raw, dict) else {}
        parts: list[object] = [node.get("class_type")]
        for name in sorted(inputs):
            value = inputs[name]
            if is_link(value) and value[0] in graph:
                parts.append([name, key(value[0], stack | {node_id}), value[1]])
            else:
                parts.append([name, value])
        digest = hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()
        memo[node_id] = digest
        return digest

    for node_id in graph:
        key(node_id, frozenset())
    return memo


def execution_order(
    graph: dict[str, object],
    outputs: list[str],
    cached: set[str],
    is_output_node: Callable[[str], bool],
) -> list[str]:
    """Execution order: dependencies first, ready output nodes preferred (§5)."""
    pending: list[str] = []

    def add(node_id: str) -> None:
        if node_id in pending or node_id not in graph:
            return
        pending.append(node_id)
        for dep in _deps(graph, node_id):
            if dep not in cached:
                add(dep)

    for output in outputs:
        add(output)
    done: set[str] = set()
    order: list[str] = []

    def is_output(node_id: str) -> bool:
        node = graph[node_id]
        return isinstance(node, dict) and is_output_node(str(node.get("class_type")))

    dependents = {n: [m for m in pending if n in _deps(graph, m)] for n in pending}
    while len(order) < len(pending):
        ready = [
            n
            for n in pending
            if n not in done and all(d in done or d in cached for d in _deps(graph, n))
        ]
        if not ready:  # a cycle: run what is left in insertion order
            ready = [n for n in pending if n not in done]
        pick = next((n for n in ready if is_output(n)), None)
        pick = pick or next((n for n in ready if any(is_output(m) for m in dependents[n])), None)
        pick = pick or next(
            (n for n in ready if any(is_output(k) for m in dependents[n] for k in dependents[m])),
            None,
        )
        pick = pick or ready[0]
        done.add(pick)
        order.append(pick)
    return order
