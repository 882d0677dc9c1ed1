"""Name -> model factory registry; `build_model` turns a config into a Linen module."""

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import flax.linen as nn
import ml_collections

from jaxcx.registry import Registry

ModelFactory = TypeVar("ModelFactory", bound=Callable[..., nn.Module])

_LINEN_ONLY_ARGS = ("parent", "name")
MODELS: Registry = Registry("model.name")
# @register("name") on a Linen module class or a function returning a module.
register: Callable[[str], Callable[[ModelFactory], ModelFactory]] = MODELS.register
available_models = MODELS.names


def model_fields(name: str) -> list[str]:
    """Config fields (constructor keyword arguments) accepted by model `name`."""
    parameters = inspect.signature(_factory(name)).parameters
    return [field for field in parameters if field not in _LINEN_ONLY_ARGS]


def build_model(model_cfg: ml_collections.ConfigDict | Mapping[str, Any]) -> nn.Module:
    """Module for `model_cfg` (ConfigDict or dict): `name` picks the model, the rest are kwargs."""
    fields = dict(model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else model_cfg)
    if "name" not in fields:
        raise ValueError(
            f"model config has no 'name' field (got fields {sorted(fields)}); "
            f"set model.name to one of {available_models()}"
        )
    name = fields.pop("name")
    valid = model_fields(name)
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} got unknown config field(s) {unknown}; valid fields: {valid}"
        )
    kwargs = {key: tuple(v) if isinstance(v, list) else v for key, v in fields.items()}
    return _factory(name)(**kwargs)


def _factory(name: str) -> Callable[..., nn.Module]:
    return MODELS.get(name)
