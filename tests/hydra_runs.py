"""Compose the real Hydra configuration and run it in-process, as scripts/run.py does."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from project import REPO, script

script("run")  # sets JUKESTYLE_ROOT and JUKESTYLE_OUTPUTS, which configs/paths reads, as a run does


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def run_config(overrides: list[str], output_dir: Path) -> DictConfig:
    run = script("run").run

    cfg = compose_run(overrides, output_dir)
    run(cfg)
    return cfg
