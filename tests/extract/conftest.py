"""Fixtures for the extract tests: a tiny synthetic clip in the layout `faceswap synth` writes, and small settings."""
import pytest

from tests.extract.clips import synth_frames, write_synth_clip


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory):
    """``DIR/A.mp4`` (12 frames, 320x240, a moving head) + ``DIR/A/masks/``; returns (video path, renders)."""
    folder = tmp_path_factory.mktemp("synth")
    renders = synth_frames(12, seed=7, yaw=20.0, pitch=10.0)  # a moving head the detector sees in every frame
    return write_synth_clip(folder, renders), renders


@pytest.fixture
def small_settings():
    from faceswap.extract.detect import DetectorSettings
    from faceswap.extract.pipeline import ExtractSettings

    def make(**kw):
        kw.setdefault("size", 64)
        kw.setdefault("detector", DetectorSettings(min_face_size=30, batch_size=4))
        return ExtractSettings(**kw)

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    # MTCNN on 320x240 frames runs as fast on one thread, and the CI machine has two cores to share.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
