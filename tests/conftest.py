"""Shared test set-up: quiet, deterministic, CPU-sized."""
import os

os.environ.setdefault("HYDRA_FULL_ERROR", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(autouse=True, scope="session")
def _c2pa_keys(tmp_path_factory):
    # convert signs every output with a local C2PA chain made on first use: keep it out of the real home.
    old = os.environ.get("FACESWAP_C2PA_DIR")
    os.environ["FACESWAP_C2PA_DIR"] = str(tmp_path_factory.mktemp("c2pa") / "keys")
    yield
    if old is None:
        os.environ.pop("FACESWAP_C2PA_DIR", None)
    else:
        os.environ["FACESWAP_C2PA_DIR"] = old
