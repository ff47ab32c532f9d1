"""Fixtures shared by every test layer: tiny configs and data, built from bundled datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.data.bundled import bundled_schema


def iris_config(name: str = "iris", **overrides: Any) -> dict[str, Any]:
    """A small, fast pipeline config on iris (150 rows, 4 features, 3 classes)."""
    config: dict[str, Any] = {
        "name": name,
        "source": {"format": "sklearn", "dataset": "iris", "files": 2},
        "schema": {"target": "target", "task": "classification", "columns": bundled_schema("iris")},
        "split": {"ratios": {"train": 0.6, "val": 0.2, "test": 0.2}, "stratify": True, "seed": 7},
        "model": {"kind": "mlp", "params": {"hidden": [16], "activation": "relu"}},
        "training": {
            "epochs": 4,
            "batch_size": 16,
            "optimizer": {"name": "adam", "lr": 0.02},
            "early_stopping": {"patience": 3},
        },
        "serving": {"name": name, "port": 8123},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


def diabetes_regression():
    """Two diabetes features through the real schema check and preparation, as a regression:
    (config, raw frame, silver frames, feature state)."""
    from components.config import PipelineConfig
    from components.data.bundled import bundled_frame
    from components.data.preparation import prepare
    from components.data.schema import check_rows

    config = PipelineConfig.model_validate(
        iris_config(schema={"target": "target", "task": "regression",
                            "columns": {"s1": "float", "bmi": "float", "target": "float"}},
                    split={"seed": 1})
    )
    frame = bundled_frame("diabetes").select("s1", "bmi", "target")
    bronze, _ = check_rows(frame, config.schema_, "d.csv")
    frames, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    return config, frame, frames, features


def write_config(directory: Path, config: dict[str, Any]) -> Path:
    path = directory / "conf" / "pipelines" / f"{config['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def iris_yaml(tmp_path: Path) -> Path:
    return write_config(tmp_path, iris_config())


SPECIES = ["setosa", "versicolor", "virginica"]


def iris_species() -> tuple[Any, Any, dict[str, Any], Any, Any]:
    """Iris with string labels through the real schema check and preparation, so answers
    must map a model's class indices back through LabelIndex.
    Returns (config, bronze, silver frames by split, feature state, raw test rows)."""
    import polars as pl

    from components.config import PipelineConfig
    from components.data.bundled import bundled_frame
    from components.data.preparation import prepare, raw_split
    from components.data.schema import check_rows

    columns = {**bundled_schema("iris"), "target": "str"}
    config = PipelineConfig.model_validate(
        iris_config(schema={"target": "target", "task": "classification", "columns": columns})
    )
    frame = bundled_frame("iris").with_columns(
        pl.col("target").replace_strict(dict(enumerate(SPECIES)), return_dtype=pl.String)
    )
    bronze, _ = check_rows(frame, config.schema_, "iris.csv")
    frames, features = prepare(bronze, config.schema_, config.split, config.preprocessing)
    rows = raw_split(bronze, config.schema_, config.split, "test").drop("target")
    return config, bronze, frames, features, rows
