"""Experiment configs: Python files with `get_config(arg)`, named variants and overrides.

A config is named on the command line as `configs/x.py`, `configs/x.py:variant` or
`configs/x.py:width=3,depth=2`; single fields are overridden with `--config.a.b=value`.
Every misspelt key, wrong type or unknown variant fails here, before any work starts,
with a message listing what is valid.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

ConfigDict = ml_collections.ConfigDict

OVERRIDE_PREFIX = "--config."


class ConfigError(ValueError):
    """A config file, variant, key or value that cannot be used."""


def base_config() -> ConfigDict:
    """The fields every study shares, with their defaults; config files start from this."""
    return ConfigDict(
        {
            "name": "run",
            "seed": 0,
            "model": {"name": "mlp"},
            "data": {"name": "xor"},
            "loss": {"name": "softmax_ce", "label_smoothing": 0.0},
            "optim": {
                "name": "adam",
                "learning_rate": 1e-3,
                "momentum": 0.9,
                "nesterov": False,
                "weight_decay": 0.0,
                "schedule": "constant",
                "warmup_steps": 0,
                "decay_at": (0.5, 0.75),
                "decay_factor": 0.1,
                "grad_clip_norm": 0.0,
            },
            "train": {
                "num_epochs": 10,
                "batch_size": 32,
                "eval_batch_size": 256,
                "eval_every_epochs": 1,
                "eval_every_steps": 0,  # > 0: evaluate every N steps instead
                "log_every_steps": 50,
                "early_stopping": {
                    "enabled": False,
                    "min_epochs": 0,
                    "window": 20,
                    "min_delta": 0.001,
                },
                "best_metric": "val/accuracy",
                "best_mode": "max",
                "keep_checkpoints": 2,
                "keep_best": 1,
                # True: compile the steps with `small_model_compiler_options()` (XLA:CPU
                # plain dots instead of XNNPACK: faster for small matrices, slower for big).
                "xla_small_model": False,
            },
            "tracking": {"tensorboard": True, "wandb": False, "wandb_project": "jaxcx"},
            # How a finished run is evaluated (jaxcx.evaluation): the task ('auto': binary,
            # multiclass or multilabel from the data), the validation-chosen threshold
            # ('youden', 'f1', or 'recall' reaching `target_recall`), bootstrap intervals and
            # the number of most-wrong test images shown.
            "eval": {"task": "auto", "threshold": "youden", "target_recall": 0.9,
                     "bootstrap_resamples": 1000, "bootstrap_seed": 0, "most_wrong": 10},
            # Start from another run's best parameters: all of them, or only the named
            # top-level subtrees (e.g. ('encoder',)) when the head differs.
            "init_from": {"workdir": "", "subtrees": ()},
            "plots": True,
        }
    )


def parse_arg(arg: str | None, variants: Mapping[str, Callable[[ConfigDict], None]],
              config: ConfigDict, aliases: Mapping[str, str] | None = None) -> ConfigDict:
    """Applies a `get_config` argument: variant names and `field=value` pairs, comma separated.

    `variants` maps a variant name to a function that edits the config in place;
    `aliases` maps short field names to full paths (`{'width': 'model.width'}`).
    """
    for token in filter(None, (t.strip() for t in (arg or "").split(","))):
        if "=" in token:
            field, value = token.split("=", 1)
            apply_overrides(config, [f"{(aliases or {}).get(field, field)}={value}"])
        elif token in variants:
            variants[token](config)
        else:
            raise ConfigError(
                f"unknown config variant {token!r}; valid variants: {', '.join(sorted(variants))}"
                " (or field=value pairs)")
    return config


def flat_keys(config: ConfigDict, prefix: str = "") -> list[str]:
    """All leaf field paths of a config, dotted (`optim.learning_rate`)."""
    keys = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, ConfigDict):
            keys.extend(flat_keys(value, path + "."))
        else:
            keys.append(path)
    return sorted(keys)


def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(path: str, old: Any, new: Any) -> Any:
    """Checks that `new` fits the type of the field's current value `old`."""
    if old is None or new is None:
        return new
    if isinstance(old, bool) or isinstance(new, bool):
        if isinstance(old, bool) and isinstance(new, bool):
            return new
    elif isinstance(old, float) and isinstance(new, int):
        return float(new)
    elif isinstance(old, (tuple, list)) and isinstance(new, (tuple, list)):
        return type(old)(new)
    elif isinstance(old, (tuple, list)) and isinstance(new, (int, float, str)):
        return type(old)([new])
    elif isinstance(new, type(old)):
        return new
    raise ConfigError(
        f"config field {path!r} expects {type(old).__name__} (now {old!r}), "
        f"got {type(new).__name__} {new!r}")


def _unknown_key(config: ConfigDict, path: str) -> ConfigError:
    valid = flat_keys(config)
    close = difflib.get_close_matches(path, valid, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key {path!r}.{hint} Valid keys: {', '.join(valid)}")


def _set_field(config: ConfigDict, path: str, value: Any) -> None:
    """Sets the field at dotted `path`, refusing unknown keys and values of the wrong type.
    A mapping given for a whole section replaces that section."""
    parent = config
    *parents, leaf = path.split(".")
    for name in parents:
        child = parent.get(name) if isinstance(parent, ConfigDict) else None
        if not isinstance(child, ConfigDict):
            raise _unknown_key(config, path)
        parent = child
    if leaf not in parent:
        raise _unknown_key(config, path)
    if isinstance(parent[leaf], ConfigDict):
        if not isinstance(value, Mapping):
            raise _unknown_key(config, path)
        parent[leaf] = ConfigDict(dict(value))
    else:
        parent[leaf] = _coerce(path, parent[leaf], value)


def apply_overrides(config: ConfigDict, overrides: Iterable[str]) -> ConfigDict:
    """Sets `a.b=value` overrides, refusing unknown keys and values of the wrong type."""
    for item in overrides:
        item = item[len(OVERRIDE_PREFIX):] if item.startswith(OVERRIDE_PREFIX) else item
        if "=" not in item:
            raise ConfigError(f"config override {item!r} must look like field=value")
        path, text = item.split("=", 1)
        value = _parse_value(text)
        if isinstance(value, Mapping):
            raise ConfigError(f"config override {item!r}: set one field at a time "
                              f"(--config.{path}.FIELD=value), not a mapping")
        _set_field(config, path, value)
    return config


def with_overrides(config: ConfigDict, changes: Mapping[str, Any]) -> ConfigDict:
    """A locked copy of `config` with `changes` ({'optim.learning_rate': 0.01, ...}) set;
    keys and types are checked as on the command line. `config` is left unchanged."""
    edited = ConfigDict(config.to_dict())
    for path, value in changes.items():
        _set_field(edited, path, value)
    edited.lock()
    return edited


def config_diff(base: ConfigDict, config: ConfigDict) -> dict[str, Any]:
    """The dotted fields whose values differ between `base` and `config` (values of
    `config`), in key order; fields only one of them has are included too."""
    old, new = _flatten(base.to_dict()), _flatten(config.to_dict())
    return {key: new.get(key) for key in sorted(set(old) | set(new))
            if _jsonable(old.get(key)) != _jsonable(new.get(key))}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def format_value(value: Any) -> str:
    """Text that `--config.a.b=TEXT` parses back to `value`."""
    if isinstance(value, str):
        return value if _parse_value(value) == value else repr(value)
    return repr(tuple(value) if isinstance(value, list) else value)


def import_config_file(path: str | Path):
    """Runs a config file as a module (so the models or datasets it registers exist) and
    returns it."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"jaxcx_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(spec: str, overrides: Sequence[str] = ()) -> ConfigDict:
    """Loads `path.py[:arg]` (or a run's saved `config.json`), applies overrides and
    returns a locked config."""
    path_text, _, arg = spec.partition(":")
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (expected e.g. configs/xor.py, or a "
                          "run folder's config.json)")
    if path.suffix == ".json":
        if arg:
            raise ConfigError(f"{path} is a saved config: it takes no variant (got {arg!r})")
        config = ConfigDict(json.loads(path.read_text()))
        apply_overrides(config, overrides)
        config.lock()
        return config
    module = import_config_file(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} defines no get_config(arg)")
    config = module.get_config(arg or None)
    apply_overrides(config, overrides)
    config.lock()
    return config


def split_override_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separates `--config.a.b=value` items from the other command-line arguments."""
    rest, overrides = [], []
    for item in argv:
        (overrides if item.startswith(OVERRIDE_PREFIX) else rest).append(item)
    return rest, overrides


def to_json(config: ConfigDict) -> str:
    """The resolved config as stable, human-readable JSON."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)
