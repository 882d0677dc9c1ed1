#!/usr/bin/env bash
# Mutation testing (mutmut, pinned in the `dev` extra) of the modules whose bugs would
# silently corrupt results. Not part of CI. Run from a clone after `pip install -e '.[dev]'`:
#
#   bash benchmarks/mutation.sh                 # every target
#   bash benchmarks/mutation.sh metrics losses  # some targets
#
# Targets, each mutated alone and checked only by its own fast tests (per mutant, mutmut
# runs just the tests that call the mutated function):
#   metrics     jaxcx/metrics.py                     tests/test_metrics.py, tests/test_evaluation.py
#   losses      jaxcx/train/losses.py                tests/test_optim_losses.py
#   evaluation  jaxcx/evaluation/*.py: what computes  tests/test_evaluation.py
#               results (not figures or markdown)
#   early_stop  should_stop_early in train/loop.py   tests/test_train.py -k early
#   splits      jaxcx/data/resplit.py, class_split.py  tests/test_data_resplit.py and the
#               class-split / relabel / resplit tests of test_data_idx.py, test_data_robustness.py
#
# Time: about 45 minutes on 2 CPU cores (metrics ~20, evaluation ~15, the rest ~7).
# Each target runs in its own copy of jaxcx/ and tests/ under $MUTATION_DIR (default: a
# new folder in /tmp), so the working tree is never touched; the copy is kept for
# inspection. Output: where each target's mutmut log is, then one row per mutated file:
# mutants, killed, survived, timeout, other (no tests / suspicious), score =
# killed / (mutants - other) (timeouts count as survived), and the surviving mutants'
# names. See one with `cd $MUTATION_DIR/<target> && mutmut show <name>`; after adding a
# test, `mutmut run <names>` there re-checks just those mutants.
# Environment: PYTHON (default .venv/bin/python), MUTATION_DIR, MUTATION_CHILDREN
# (parallel mutants, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
MUTMUT="$(dirname "$PYTHON")/mutmut"
CHILDREN=${MUTATION_CHILDREN:-2}
OUT=${MUTATION_DIR:-$(mktemp -d /tmp/jaxcx-mutation.XXXXXX)}
export JAXCX_NO_PROGRESS=1
export JAXCX_SHARED_DATA=${JAXCX_SHARED_DATA:-$(dirname "$REPO")/shared/data}

# name | files to mutate | mutant-name patterns (space-separated; empty: all) | pytest arguments
TARGETS=(
  'metrics|"jaxcx/metrics.py"||"tests/test_metrics.py", "tests/test_evaluation.py"'
  'losses|"jaxcx/train/losses.py"||"tests/test_optim_losses.py"'
  'evaluation|"jaxcx/evaluation/*.py"|jaxcx.evaluation.*.x_* jaxcx.evaluation.*ǁOutputsǁ* jaxcx.evaluation.*ǁoperating_points__* jaxcx.evaluation.*ǁmetrics__* jaxcx.evaluation.*ǁ_intervals__*|"tests/test_evaluation.py"'
  'early_stop|"jaxcx/train/loop.py"|jaxcx.train.loop.x_should_stop_early*|"tests/test_train.py", "-k", "early"'
  'splits|"jaxcx/data/resplit.py", "jaxcx/data/class_split.py"||"tests/test_data_resplit.py", "tests/test_data_idx.py", "tests/test_data_robustness.py", "-k", "resplit or class_split or relabel or nested or subset"'
)

selected=("$@")
for target in "${TARGETS[@]}"; do
  IFS='|' read -r name mutate filter tests <<<"$target"
  read -ra patterns <<<"$filter"
  if [ ${#selected[@]} -gt 0 ] && [[ " ${selected[*]} " != *" $name "* ]]; then continue; fi
  work="$OUT/$name"
  mkdir -p "$work"
  tar -C "$REPO" --exclude=__pycache__ -cf - jaxcx tests configs pyproject.toml | tar -C "$work" -xf -
  cat >>"$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["jaxcx"]
also_copy = ["configs"]
only_mutate = [$mutate]
pytest_add_cli_args_test_selection = [$tests]
pytest_add_cli_args = ["-p", "no:cacheprovider"]
process_isolation = "forkserver"
forkserver_warmup = "import"
preload_modules_file = "preload.txt"
EOF
  # Imported once by the fork server; nothing there may make a JAX array (a forked XLA
  # client deadlocks), so the test modules are imported after the fork.
  printf '%s\n' jax jax.numpy flax.linen optax scipy.stats sklearn.metrics ml_collections \
    matplotlib.pyplot >"$work/preload.txt"
  echo "=== $name: mutmut output in $work/mutmut.log"
  if ! (cd "$work" && "$MUTMUT" run --max-children "$CHILDREN" "${patterns[@]}") >"$work/mutmut.log" 2>&1; then
    tail -n 30 "$work/mutmut.log" | tr '\r' '\n' | tail -n 30
    exit 1
  fi
done

"$PYTHON" - "$OUT" <<'EOF'
"""Per mutated file: mutant counts by status, the score and the survivors."""
import json, sys
from collections import Counter
from pathlib import Path

rows = []
for meta in sorted(Path(sys.argv[1]).glob("*/mutants/**/*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    codes = {k: v for k, v in codes.items() if v is not None}  # not run (outside the filter)
    if not codes:
        continue
    status = {k: {1: "killed", 3: "killed", 0: "survived", 36: "timeout", -24: "timeout", 24: "timeout",
                  152: "timeout", 255: "timeout"}.get(v, "other") for k, v in codes.items()}
    count = Counter(status.values())
    tested = len(codes) - count["other"]
    score = 100 * count["killed"] / tested if tested else float("nan")
    rows.append((str(meta.relative_to(sys.argv[1])).replace(".meta", ""), len(codes), count, score,
                 sorted(k for k, s in status.items() if s in ("survived", "timeout"))))
print(f"\n{'file':60} {'mutants':>7} {'killed':>6} {'surv.':>5} {'timeout':>7} {'other':>5} {'score':>6}")
for path, total, count, score, _ in rows:
    print(f"{path:60} {total:7} {count['killed']:6} {count['survived']:5} {count['timeout']:7} "
          f"{count['other']:5} {score:5.1f}%")
for path, _, _, _, survivors in rows:
    for name in survivors:
        print(f"survived: {path.split('/')[0]}: {name}")
EOF
