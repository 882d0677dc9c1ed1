"""Per-layer model summary from abstract evaluation (nothing is compiled or allocated)."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """`table`: one row per module call (path, type, output shape, parameters); `total_params`."""

    table: str
    total_params: int

    def __str__(self) -> str:
        return self.table


def summary(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    rng: jax.Array | None = None,
    dtype: Any = jnp.float32,
    train: bool = False,
) -> ModelSummary:
    """Summarise `model` on inputs of `input_shape` (batch axis included), via `jax.eval_shape`."""
    rng = jax.random.key(0) if rng is None else rng
    calls: list[tuple[tuple[str, ...], str, str] | None] = []

    def record_call(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        row = len(calls)
        calls.append(None)  # reserve the row so parents precede their children
        output = next_fun(*args, **kwargs)
        shapes = jax.tree.map(lambda leaf: tuple(leaf.shape), output)
        calls[row] = (context.module.path, type(context.module).__name__, str(shapes))
        return output

    def init(inputs):
        with nn.intercept_methods(record_call):
            return model.init({"params": rng, "dropout": rng}, inputs, train=train)

    variables = jax.eval_shape(init, jax.ShapeDtypeStruct(tuple(input_shape), dtype))
    params = variables.get("params", {})
    rows = [
        ("/".join(path) or "(model)", module_type, shapes, f"{_count(_subtree(params, path)):,}")
        for path, module_type, shapes in calls
    ]
    total_params = _count(params)
    other = {name: _count(tree) for name, tree in variables.items() if name != "params"}
    footer = [f"Total params: {total_params:,}"]
    footer += [f"{name}: {count:,} values" for name, count in other.items()]
    header = ("module", "type", "output shape", "params")
    table = "\n".join([_format_table(header, rows), *footer])
    return ModelSummary(table=table, total_params=total_params)


def _subtree(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        tree = tree.get(key, {})
    return tree


def _count(tree: Any) -> int:
    return sum(int(leaf.size) for leaf in jax.tree.leaves(tree))


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    rule = "  ".join("-" * width for width in widths)

    def line(cells: Sequence[str]) -> str:
        *text, number = cells
        padded = [cell.ljust(width) for cell, width in zip(text, widths)]
        return "  ".join([*padded, number.rjust(widths[-1])])

    return "\n".join([line(header), rule, *(line(row) for row in rows), rule])
