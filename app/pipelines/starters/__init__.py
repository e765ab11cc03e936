"""Starter pipelines written for Marid (YAML files beside this module); never copies of DjinnBot's."""

from __future__ import annotations

from importlib import resources

from app.pipelines.spec import Pipeline
from app.pipelines.validate import load_valid_pipeline

# The starter roster of workspace agents the starters run on (their personas are written elsewhere).
STARTER_AGENT_IDS = ("product-owner", "architect", "software-engineer", "test-engineer", "sre", "ux-designer")


def starter_ids() -> tuple[str, ...]:
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name.removesuffix(".yml") for f in files if f.name.endswith(".yml")))


def starter_source(starter_id: str) -> str:
    """The YAML text of a starter (what a workspace gets as its first version); KeyError if unknown."""
    if starter_id not in starter_ids():
        raise KeyError(starter_id)
    return resources.files(__name__).joinpath(f"{starter_id}.yml").read_text(encoding="utf-8")


def load_starter(starter_id: str) -> Pipeline:
    return load_valid_pipeline(starter_source(starter_id))
