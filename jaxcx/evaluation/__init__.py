"""Evaluators by task (`binary`, `multiclass`, `multilabel`), chosen by `config.eval.task`
('auto': from the data). Each turns a split's probabilities into metrics with bootstrap
intervals, operating points chosen on validation, figures and a markdown section."""

from jaxcx.evaluation.base import (Evaluator, Outputs, available_evaluators, get_evaluator,
                                   register_evaluator, task_for)
from jaxcx.evaluation import binary, multiclass, multilabel  # noqa: F401  (registers them)

__all__ = ["Evaluator", "Outputs", "available_evaluators", "get_evaluator",
           "register_evaluator", "task_for"]
