"""The library's layers: no module imports from a layer above it.

From the bottom: config, registries and run folders; metrics, tracking and plots; data and models
(beside each other) and checkpoints; the training engine; evaluators and data analysis;
`jaxcx.run`; sweeps; studies; the command-line plumbing. `jaxcx/__init__.py` is the public
face of the whole package and may name anything.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jaxcx"
LAYERS = [
    ("jaxcx.config", "jaxcx.workdir", "jaxcx.registry"),
    ("jaxcx.metrics", "jaxcx.tracking", "jaxcx.plots"),
    ("jaxcx.data", "jaxcx.models", "jaxcx.checkpoint"),
    ("jaxcx.train",),
    ("jaxcx.evaluation", "jaxcx.analysis"),
    ("jaxcx.run",),
    ("jaxcx.sweep",),
    ("jaxcx.studies",),
    ("jaxcx.launch",),
]


def layer_of(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def imports_of(path: Path) -> set[str]:
    """Every jaxcx module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("jaxcx.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def known(name: str) -> bool:
    """Whether `name` is a module or package (not a name imported from one)."""
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").exists() or (root / relative).is_dir()


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        module = module_name(path)
        for imported in sorted(filter(known, imports_of(path))):
            if layer_of(imported) > layer_of(module):
                problems.append(f"{module} (layer {layer_of(module)}) imports {imported} "
                                f"(layer {layer_of(imported)})")
    return problems


def test_no_module_imports_from_a_layer_above_it():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a data module importing the training engine is reported."""
    fake = tmp_path / "jaxcx"
    (fake / "data").mkdir(parents=True)
    (fake / "train").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "train" / "__init__.py").write_text("")
    (fake / "train" / "loop.py").write_text("")
    (fake / "data" / "bad.py").write_text("def f():\n    from jaxcx.train.loop import fit\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert upward_imports() == ["jaxcx.data.bad (layer 2) imports jaxcx.train.loop (layer 3)"]
