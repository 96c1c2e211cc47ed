"""Fixtures for the train tests: two tiny fake identities and a composed tiny config."""
import pytest

from tests.train.fakes import make_extract_folder


@pytest.fixture(scope="session")
def faces_ab(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    a = make_extract_folder(root / "A", n=16, skin=(230, 190, 160), seed=1)
    b = make_extract_folder(root / "B", n=16, skin=(120, 80, 60), seed=2)
    return a, b


@pytest.fixture
def tiny_overrides(faces_ab, tmp_path):
    a, b = faces_ab
    # CPU even where a GPU exists: the determinism and exact-resume tests hold on CPU (test_train_cuda covers CUDA).
    return [f"data.a={a}", f"data.b={b}", f"out={tmp_path / 'run'}", "+debug=tiny", "device=cpu"]
