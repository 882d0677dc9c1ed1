"""The XOR/MNIST notebook's deep-versus-wide study on XOR: every width x depth x seed, in
one compiled program.

    python -m experiments.xor_study --config=configs/xor_study.py --workdir=runs/xor_study
    python -m experiments.xor_study --config=configs/xor_study.py:adam,num_seeds=20 --workdir=...

Writes report.md (Table 1 and figures), results.json, config.json and plots/ to --workdir.
"""

from jaxcx import launch
from jaxcx.studies import xor as xor_study

launch.FLAGS.set_default("config", "configs/xor_study.py")


def main():
    config = launch.config_from_flags()
    workdir = launch.prepare_run_workdir(config)
    study = xor_study.run_xor_study(config)
    print(xor_study.results_table(study.results))
    print(f"compile {study.compile_seconds:.1f} s, run {study.run_seconds:.2f} s; "
          f"report: {xor_study.write_report(study, config, workdir)}")


if __name__ == "__main__":
    launch.run(main)
