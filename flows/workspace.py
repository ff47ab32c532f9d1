"""Where one pipeline's data and runs live, from its config and profile, and the Ray
connection. The only place in the project that turns names into locations."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import ray

from components.config import PipelineConfig, ProfileConfig, load_profile


@dataclass(frozen=True)
class Workspace:
    config: PipelineConfig
    profile: ProfileConfig

    @classmethod
    def of(cls, config: PipelineConfig, conf_dir: str | Path = "conf") -> "Workspace":
        return cls(config, load_profile(config.profile, conf_dir))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def landing(self) -> Path:
        return Path(self.profile.landing) / self.name

    @property
    def lake(self) -> str:
        return f"{self.profile.lake}/{self.name}"

    @property
    def runs(self) -> str:
        return self.profile.runs

    @property
    def bundles(self) -> Path:
        return Path(self.profile.root) / "bundles" / self.name


def conf_dir_of(config_path: Path) -> Path:
    """conf/pipelines/x.yaml -> conf/ (profiles live beside pipelines); otherwise ./conf."""
    parent = Path(config_path).resolve().parent
    return parent.parent if parent.name == "pipelines" else Path("conf")


def connect_ray(profile: ProfileConfig) -> None:
    """Join the profile's cluster (RAY_ADDRESS wins) or start a local Ray once per process."""
    if ray.is_initialized():
        return
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)  # a local cluster's processes inherit these
    env_vars = {key: os.environ[key] for key in RAY_ENV}
    if profile.ray_address:
        import components

        # Ship the project's code and settings to the cluster's workers.
        ray.init(
            address=profile.ray_address,
            runtime_env={"py_modules": [str(Path(components.__file__).parent)], "env_vars": env_vars},
            logging_level=logging.WARNING,
        )
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)


RAY_ENV = {
    # Train V2 is the only trainer API this project uses.
    "RAY_TRAIN_V2_ENABLED": "1",
    # The Train controller collects reports once per health check; at its 2 s default every
    # epoch shorter than that blocks in ray.train.report until the next poll.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
}
