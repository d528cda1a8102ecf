"""Fixtures of the training tests: a plan cache of their own, and configs sized by a budget."""

import pytest

from moviegpt.core.settings import load_config
from moviegpt.train import plan as planner


@pytest.fixture
def plans(tmp_path, monkeypatch):
    """Plans go to a temporary cache, not the user's."""
    monkeypatch.setattr(planner, "PLANS", tmp_path / "plans")
    return tmp_path / "plans"


@pytest.fixture
def budget():
    """budget(folder, minutes, *overrides): the smoke profile with a budget in minutes, its runs under folder."""

    def make(folder, minutes: float, *extra: str):
        return load_config("smoke", [f"runs_dir={folder / 'runs'}", f"train.budget_minutes={minutes}", *extra])

    return make
