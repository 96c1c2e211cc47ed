"""Shared test set-up: quiet, deterministic, CPU-sized."""
import os

os.environ.setdefault("HYDRA_FULL_ERROR", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
