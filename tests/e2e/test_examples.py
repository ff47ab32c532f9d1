"""Every shipped example as a user runs it, `rayline run conf/pipelines/X.yaml --smoke 4`,
holding the quality the README states for it.

About ten minutes on 2 cores, so not part of `make test` (which runs mnist_cnn's, in
test_cli.py; `make run` runs the quickstart's): `make test-examples` runs them all.
They share one working folder, in order, because mnist_transfer starts from the
champion mnist_cnn registers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.examples]

RAYLINE = str(Path(sys.executable).with_name("rayline"))
PIPELINES = Path(__file__).resolve().parents[2] / "conf" / "pipelines"

# example -> the least test accuracy it must reach (the README's recorded runs, less a margin
# for seeds and sampled search points; verification accuracy for the Siamese example)
EXAMPLES = {
    "quickstart": 0.94,
    "wine_forest": 0.9,
    "wine_ensemble": 0.9,
    "digits_resnet": 0.97,
    "mnist_cnn": 0.96,
    "mnist_transfer": 0.9,
    "mnist_siamese": 0.7,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_example_runs_and_reaches_its_stated_quality(name: str, workdir: Path):
    missing = sorted(p.stem for p in PIPELINES.glob("*.yaml") if p.stem not in EXAMPLES)
    assert not missing, f"shipped examples with no run here: {missing}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_HOME", None)
    run = subprocess.run(
        [RAYLINE, "run", str(PIPELINES / f"{name}.yaml"), "--smoke", "4"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert re.search(r" v\d+, champion", output) and "4 test rows through" in output, output
    assert "Traceback" not in output
    accuracy = float(re.search(r"test metrics\s*│ accuracy=([0-9.]+)", output).group(1))
    assert accuracy >= EXAMPLES[name], output
