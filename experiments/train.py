"""Train one config and write its run folder.

    python -m experiments.train --config=configs/xor.py --workdir=runs/xor
    python -m experiments.train --config=configs/xor.py:width=3,depth=2 \
        --config.optim.learning_rate=0.03 --workdir=runs/xor_w3d2

Re-running the same command resumes from the last checkpoint. See README.md.
"""

from jaxcx import launch
from jaxcx.data.registry import build_data
from jaxcx.models import build_model, summary
from jaxcx.report import write_run_report
from jaxcx.train.loop import fit
from jaxcx.workdir import prepare_workdir

FLAGS = launch.FLAGS


def main():
    launch.init_distributed()
    config = launch.config_from_flags()
    workdir = prepare_workdir(launch.require_workdir(), config, overwrite=FLAGS.overwrite)
    data = build_data(config.data, config.seed)
    if data.bad_inputs is not None and data.bad_inputs.count:
        print(f"{data.bad_inputs.summary()}\nlisted in {data.bad_inputs.write(workdir)}")
    model_summary = summary(build_model(config.model), (1, *data.input_shape))
    print(model_summary.table)
    result = fit(config, workdir, data)
    report = write_run_report(config, workdir, data, result)
    print(f"best {config.train.best_metric} = {result.best_metrics.get(config.train.best_metric)}"
          f" at step {result.best_step}; report: {report}")


if __name__ == "__main__":
    launch.run(main)
