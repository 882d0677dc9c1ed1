"""Shared plumbing of the absl entry points in `experiments/`.

`run(main)` takes the `--config.a.b=value` overrides out of the command line (absl does
not know them), runs `main` under `absl.app` (grain worker processes need parsed flags),
and turns the errors a user can fix into one clear line and exit status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
from absl import app, flags, logging

from jaxcx.config import ConfigDict, ConfigError, load_config, split_override_flags
from jaxcx.workdir import prepare_workdir

flags.DEFINE_string("config", None, "Config file, with an optional variant: configs/x.py[:variant].")
flags.DEFINE_string("workdir", None, "Folder for this run's config, metrics, checkpoints and plots.")
flags.DEFINE_bool("overwrite", False, "Delete a run of a different config found in --workdir.")
flags.DEFINE_string("coordinator_address", None,
                    "Multi-host: host:port of process 0 (also set --num_processes, --process_id).")
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
flags.DEFINE_string("xla_cache_dir", None,
                    "Folder of compiled XLA programs reused across runs and processes "
                    "(default: xla/ in $JAXCX_CACHE or ~/.cache/jaxcx); '' turns it off.")
FLAGS = flags.FLAGS
# Programs that compile faster than this are not worth a cache entry.
XLA_CACHE_MIN_COMPILE_SECONDS = 1.0

_OVERRIDES: list[str] = []


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe bad input rather than a bug: reported without a traceback."""
    from jaxcx.checkpoint import CheckpointError
    from jaxcx.data.errors import DataError
    from jaxcx.train.loop import NonFiniteLossError
    from jaxcx.workdir import WorkdirError
    return (ConfigError, WorkdirError, DataError, CheckpointError, NonFiniteLossError,
            FileNotFoundError)


def run(main: Callable[[], None]) -> None:
    """Runs an experiment's `main()` with config overrides split off; positional
    arguments are refused (every input is a flag)."""
    argv, overrides = split_override_flags(sys.argv)
    _OVERRIDES[:] = overrides

    def guarded(args):
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # Orbax and grain log every save at INFO
        try:
            if len(args) > 1:
                raise ConfigError(f"unexpected arguments: {' '.join(args[1:])}")
            enable_compilation_cache(FLAGS.xla_cache_dir)
            main()
        except user_errors() as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded, argv=argv)


def enable_compilation_cache(folder: str | None) -> Path | None:
    """Keeps compiled XLA programs in `folder` (None: the default under the data cache;
    '': off), so the seeds of a study and a resumed run skip recompiling the same step
    (DenseNet-121's takes minutes on a CPU). Returns the folder in use."""
    if folder == "":
        return None
    if folder is None:
        configured = os.environ.get("JAXCX_CACHE", "")
        folder = str(Path(configured or Path.home() / ".cache" / "jaxcx").expanduser() / "xla")
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      XLA_CACHE_MIN_COMPILE_SECONDS)
    return Path(folder)


def config_from_flags() -> ConfigDict:
    """The config named by `--config`, with the command line's overrides applied."""
    if not FLAGS.config:
        raise ConfigError("--config is required, e.g. --config=configs/xor.py")
    return load_config(FLAGS.config, _OVERRIDES)


def command_line_overrides() -> list[str]:
    """The `--config.a.b=value` items of the command line, as given."""
    return list(_OVERRIDES)


def require_workdir() -> str:
    if not FLAGS.workdir:
        raise ConfigError("--workdir is required: the folder this run writes to")
    return FLAGS.workdir


def prepare_run_workdir(config: ConfigDict, ignore: Sequence[str] = ()) -> Path:
    """`--workdir` prepared for `config` (see `jaxcx.workdir.prepare_workdir`); the dotted
    fields in `ignore` are left out of the comparison with a run already there, so that
    raising them (more seeds, more trials) extends that run."""
    fingerprint = config.copy_and_resolve_references()
    with fingerprint.unlocked():
        for path in ignore:
            *parents, leaf = path.split(".")
            section = fingerprint
            for name in parents:
                section = section[name]
            del section[leaf]
    return prepare_workdir(require_workdir(), fingerprint, overwrite=FLAGS.overwrite)


def init_distributed() -> None:
    """Joins a multi-host job when the coordinator flags are given (no-op otherwise)."""
    if FLAGS.coordinator_address:
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
