"""The XOR/MNIST notebook's MNIST comparison: feed-forward network versus CNN, each tested
once per digit.

    python -m experiments.mnist_study --config=configs/mnist.py --workdir=runs/mnist_study
    python -m experiments.mnist_study --config=configs/mnist.py:sgd --workdir=runs/mnist_sgd
    python -m experiments.mnist_study --config=configs/mnist.py:smoke --workdir=/tmp/smoke

Reads MNIST from ../shared/data/mnist (or --config.data.root); each model trains in
--workdir/<run> (re-running resumes), and --workdir/report.md holds the tables and figures.
"""

from jaxcx import launch
from jaxcx.studies import mnist as mnist_study

launch.FLAGS.set_default("config", "configs/mnist.py")


def main():
    config = launch.config_from_flags()
    workdir = launch.prepare_run_workdir(config)
    results = mnist_study.run_mnist_study(config, workdir)
    print(mnist_study.comparison_table(*results))
    print(f"report: {mnist_study.write_report(results, config, workdir)}")


if __name__ == "__main__":
    launch.run(main)
