"""Train one config and evaluate its best checkpoint on validation, into --workdir.

    python -m experiments.train --config=configs/xor.py --workdir=runs/xor
    python -m experiments.train --config=configs/xor.py:width=3,depth=2 \
        --config.optim.learning_rate=0.03 --workdir=runs/xor_w3d2
    python -m experiments.train --config=runs/xor/config.json --workdir=runs/xor_again

Re-running the same command resumes from the last checkpoint (a finished run is read
back). `--config` may name a run folder's `config.json` to train that run again. The
test split is left alone: `python -m experiments.evaluate --workdir=...` uses it once.
See README.md.
"""

from jaxcx import launch
from jaxcx.data.registry import build_data
from jaxcx.models import build_model, summary
from jaxcx.run import record_launch, run_config, train_and_evaluate, validate

FLAGS = launch.FLAGS


def main():
    launch.init_distributed()
    config = run_config(launch.config_from_flags())
    validate(config)  # before the workdir is touched
    workdir = launch.prepare_run_workdir(config)
    record_launch(workdir, FLAGS.config, launch.command_line_overrides())
    data = build_data(config.data, config.seed)
    print(summary(build_model(config.model), (1, *data.input_shape)).table)
    result = train_and_evaluate(config, workdir, data=data)
    metric = config.train.best_metric
    print(f"best {metric} = {result.val_metrics.get(metric)} at step {result.best_step}; "
          f"report: {workdir / 'report.md'}")


if __name__ == "__main__":
    launch.run(main)
