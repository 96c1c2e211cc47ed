"""Temporal stability on synthetic actors: a still head's crop stops jittering, a moving head is still followed."""
import numpy as np
import pytest

from faceswap.extract.align import transform_points
from faceswap.extract.pipeline import ExtractSettings, extract
from faceswap.extract.smooth import SmoothingSettings, face_scale
from tests.extract.clips import synth_frames, write_images


def _run(folder, out, method):
    return extract(folder, out, ExtractSettings(size=256, temporal="true", smoothing=SmoothingSettings(method=method)),
                   device="cpu", progress=False).alignments


@pytest.mark.slow
def test_still_head_jitter_drops_3x_with_smoothing(tmp_path):
    # a still head with sensor noise: the detector's landmarks jitter by a fraction of a pixel
    renders = synth_frames(30, seed=4, still=True, noise=4.0, yaw=15.0, pitch=8.0)
    truth = renders[0].landmarks  # the head does not move: any motion in the crop is jitter
    folder = write_images(tmp_path / "frames", [r.image for r in renders])
    jitter = {}
    for method in ("none", "one_euro"):
        al = _run(folder, tmp_path / method, method)
        assert al.summary()["targets"] == len(renders)
        crop_pts = np.array([transform_points(truth, al.target_face(i).matrix) for i in range(len(al))])
        jitter[method] = np.abs(np.diff(crop_pts, axis=0)).mean()  # mean absolute motion, crop px at 256
    print(f"still head crop jitter: {jitter['none']:.3f} px raw, {jitter['one_euro']:.3f} px smoothed")
    assert jitter["none"] > 0.02  # the noise does make the detector jitter (else the test shows nothing)
    assert jitter["none"] >= 3 * jitter["one_euro"]


@pytest.mark.slow
def test_moving_head_is_followed(tmp_path):
    # the default performance: head turns, nods, moves across the frame, with quick turns now and then
    renders = synth_frames(40, seed=9, yaw=20.0, pitch=10.0)
    folder = write_images(tmp_path / "frames", [r.image for r in renders])
    errs = {}
    for method in ("none", "one_euro"):
        al = _run(folder, tmp_path / method, method)
        d = [np.linalg.norm(al.target_face(i).landmarks_smoothed - r.landmarks, axis=1).mean() / face_scale(r.landmarks)
             for i, r in enumerate(renders) if al.target_face(i) is not None]
        assert len(d) >= len(renders) - 1
        errs[method] = float(np.mean(d))
    print(f"moving head landmark error (face sizes): {errs['none']:.4f} raw, {errs['one_euro']:.4f} smoothed")
    # smoothing adds at most 1% of the face size of lag to the detector's own error
    assert errs["one_euro"] < errs["none"] + 0.01
