"""docs/api.md: every example runs, in order, in one fresh process."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_api_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 7
    (tmp_path / "configs").symlink_to(REPO / "configs")
    script = tmp_path / "examples.py"
    script.write_text("\n".join(blocks))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "JAXCX_NO_PROGRESS": "1",
                                            "JAXCX_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Did you mean train.num_epochs" in result.stdout
    assert (tmp_path / "runs" / "api_xor" / "test" / "test_metrics.json").exists()
