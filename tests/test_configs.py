"""Every option of every config group composes with every stage that uses it."""
import pytest

from faceswap.cli import STAGES
from faceswap.config import CONF_DIR, compose, group_options


def _stage_groups():
    for name, stage in STAGES.items():
        for group in stage.groups:
            for option in group_options(group):
                yield name, group, option


@pytest.mark.parametrize("stage,group,option", list(_stage_groups()))
def test_group_option_composes(stage, group, option):
    cfg = compose(stage, [f"{group}={option}"] if group != "experiment" else [f"+experiment={option}"])
    assert cfg is not None


def test_groups_exist():
    for group in ("data", "model", "train", "convert", "experiment"):
        assert (CONF_DIR / group).is_dir(), group
        assert group_options(group), group
