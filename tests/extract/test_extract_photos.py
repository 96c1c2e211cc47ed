"""Real photos moved by known similarity transforms: the face is found in every frame and alignment undoes the motion."""
import shutil

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from faceswap.extract.detect import Detector, DetectorSettings
from faceswap.extract.pipeline import ExtractSettings, extract
from faceswap.extract.smooth import SmoothingSettings
from faceswap.video import read_image
from tests.extract.clips import moving_clip, photo, write_images

SIZE = 128
# photo, scale onto the 640x480 canvas, least mean SSIM between crops, most drift (crop px at 128)
CASES = [("astronaut", 0.7, 0.9, 0.6), ("grace_hopper", 0.6, 0.9, 0.6), ("camera", 1.0, 0.6, 3.0)]


def _compose(a, b):
    """2x3 a after 2x3 b."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


@pytest.fixture(scope="module")
def photo_detector():
    return Detector(DetectorSettings(), device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("name,scale,min_ssim,max_drift", CASES)
def test_moving_photo_gives_steady_crops(name, scale, min_ssim, max_drift, tmp_path, photo_detector):
    from faceswap.extract.align import transform_points

    img = photo(name)
    face = max(photo_detector.detect([img])[0], key=lambda f: f.area)
    frames, mats = moving_clip(img, 12, face.centre, scale)  # shift +-40 px, rotate +-12 deg, zoom +-15%
    folder = write_images(tmp_path / "frames", frames)
    # smoothing off: this checks detection and alignment; the smoother is checked on its own
    res = extract(folder, tmp_path / "out", ExtractSettings(size=SIZE, smoothing=SmoothingSettings(method="none")),
                  device="cpu", progress=False)
    al = res.alignments
    assert al.summary()["targets"] == len(frames) and al.summary()["faces"] == len(frames)
    # photo -> crop must be the same map in every frame: the known motion is undone
    pts = [transform_points(face.landmarks, _compose(al.target_face(i).matrix, mats[i])) for i in range(len(al))]
    drift = [np.linalg.norm(p - pts[0], axis=1).mean() for p in pts[1:]]
    crops = [read_image(tmp_path / "out" / "faces" / f"{r.name}.png") for r in al.frames]
    ssim = [structural_similarity(crops[0], c, channel_axis=2) for c in crops[1:]]
    print(f"{name}: SSIM mean {np.mean(ssim):.3f} min {np.min(ssim):.3f}; drift mean {np.mean(drift):.2f} px")
    assert np.mean(drift) < max_drift
    assert np.mean(ssim) > min_ssim
    shutil.rmtree(tmp_path / "frames")


def test_unmoved_photo_crop_matches_a_direct_alignment(tmp_path, photo_detector):
    """A still frame: the crop written is the aligned face of the detected landmarks (no hidden transform)."""
    from faceswap.extract.align import align_face

    img = photo("astronaut")[:400, 40:440]
    frames = [np.ascontiguousarray(img)] * 2
    folder = write_images(tmp_path / "f", frames)
    res = extract(folder, tmp_path / "out", ExtractSettings(size=SIZE), device="cpu", progress=False)
    face = res.alignments.target_face(0)
    expected, m = align_face(img, face.landmarks_smoothed, SIZE, 0.75)
    np.testing.assert_allclose(m, face.matrix, atol=1e-6)
    got = read_image(tmp_path / "out" / "faces" / f"{res.alignments.frame(0).name}.png")
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
