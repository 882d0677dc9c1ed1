"""jaxcx: functional JAX/Flax research code for medical and small-image deep learning.

The entry points a user needs, importable from the top level (loaded on first use):

    config = jaxcx.load_config("configs/xor.py:width=3")         # config files and variants
    config = jaxcx.with_overrides(config, {"train.num_epochs": 5})
    result = jaxcx.train_and_evaluate(config, "runs/xor")        # train, validate, report
    record = jaxcx.evaluate("runs/xor")                          # the one test evaluation
    print(jaxcx.compare_runs(["runs/a", "runs/b"]))              # finished runs side by side

and the registries: `build_model`/`available_models`/`register_model`,
`build_data`/`available_datasets`/`register_dataset`, `get_evaluator`/
`available_evaluators`/`register_evaluator`, `register_loss`, `register_optimizer`.
See docs/api.md.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "jaxcx.config",
    "with_overrides": "jaxcx.config",
    "train_and_evaluate": "jaxcx.run",
    "evaluate": "jaxcx.run",
    "load_result": "jaxcx.run",
    "split_outputs": "jaxcx.run",
    "RunResult": "jaxcx.run",
    "compare_runs": "jaxcx.studies.compare",
    "build_model": "jaxcx.models",
    "available_models": "jaxcx.models",
    "register_model": ("jaxcx.models", "register"),
    "summary": "jaxcx.models",
    "build_data": "jaxcx.data.registry",
    "available_datasets": "jaxcx.data.registry",
    "register_dataset": "jaxcx.data.registry",
    "get_evaluator": "jaxcx.evaluation",
    "available_evaluators": "jaxcx.evaluation",
    "register_evaluator": "jaxcx.evaluation",
    "register_loss": "jaxcx.train.losses",
    "register_optimizer": "jaxcx.train.optim",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxcx' has no attribute {name!r}")
    module, attribute = (_EXPORTS[name] if isinstance(_EXPORTS[name], tuple)
                         else (_EXPORTS[name], name))
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
