"""Detection: MTCNN output parsing (object arrays, no face), and the detector on a real photo, batched or not."""
import numpy as np
import pytest
from skimage import data

from faceswap.errors import UserError
from faceswap.extract.detect import Detector, DetectorSettings, parse_detections


def test_parse_object_arrays_and_none():
    boxes = np.array([np.array([[1, 2, 30, 40], [5, 5, 9, 9]], dtype=np.float32)], dtype=object)[0]
    probs = np.array([0.99, 0.5], dtype=object)
    points = np.empty(1, dtype=object)
    points[0] = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    dets = parse_detections(boxes, probs, points[0], min_score=0.9)
    assert len(dets) == 1
    assert dets[0].box.dtype == np.float64 and dets[0].landmarks.shape == (5, 2)
    assert dets[0].score == pytest.approx(0.99) and dets[0].area == pytest.approx(29 * 38)
    assert parse_detections(None, [None], None) == []


def test_bad_detector_settings_are_user_errors():
    for kw in ({"thresholds": [0.6, 0.7]}, {"min_face_size": 5}, {"batch_size": 0}, {"factor": 0.99}):
        with pytest.raises(UserError, match="extract.detector"):
            DetectorSettings(**kw)


@pytest.fixture(scope="module")
def detector():
    return Detector(DetectorSettings(min_face_size=40, batch_size=4), device="cpu")


def test_finds_the_astronaut_with_landmarks_in_order(detector):
    img = data.astronaut()[:320, 80:400]  # 320x320 around the face
    faces = detector.detect([img])[0]
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    x1, y1, x2, y2 = f.box
    assert ((f.landmarks[:, 0] > x1) & (f.landmarks[:, 0] < x2) & (f.landmarks[:, 1] > y1) & (f.landmarks[:, 1] < y2)).all()
    le, re, nose, lm, rm = f.landmarks
    assert le[0] < re[0] and lm[0] < rm[0]  # image-left before image-right
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])  # eyes above nose above mouth


def test_batched_equals_one_by_one_and_mixed_sizes(detector):
    img = data.astronaut()[:320, 80:400]
    frames = [img, np.zeros_like(img), img[:, ::-1].copy(), np.ascontiguousarray(img[:240, :300])]
    batched = detector.detect(frames)
    single = [detector.detect([f])[0] for f in frames]
    assert [len(b) for b in batched] == [len(s) for s in single] == [1, 0, 1, 1]
    for b, s in zip(batched, single):
        for fb, fs in zip(b, s):
            np.testing.assert_allclose(fb.landmarks, fs.landmarks, atol=0.1)  # refinement may stop a pass apart
    # the mirrored face's landmarks mirror too (and left/right stay image-left/right)
    w = img.shape[1]
    np.testing.assert_allclose(batched[2][0].landmarks[[1, 0, 2, 4, 3], 0], (w - 1) - batched[0][0].landmarks[:, 0], atol=3)


def _photo_spread(detector, frames, mats):
    """How far the detected landmarks, mapped back into the photo, scatter around their mean (px)."""
    import cv2

    from faceswap.extract.align import transform_points

    back = [transform_points(detector.detect([f])[0][0].landmarks, cv2.invertAffineTransform(m)) for f, m in zip(frames, mats)]
    back = np.array(back)
    return float(np.linalg.norm(back - back.mean(axis=0), axis=2).mean())


def test_refinement_makes_landmarks_follow_a_moving_face():
    from tests.extract.clips import moving_clip, photo

    img = photo("astronaut")
    frames, mats = moving_clip(img, 6, (224, 118), 0.7)
    raw = _photo_spread(Detector(DetectorSettings(refine=0), device="cpu"), frames, mats)
    refined = _photo_spread(Detector(DetectorSettings(refine=5), device="cpu"), frames, mats)
    assert refined < 0.5 * raw


def test_redetect_finds_a_face_where_it_was_and_nothing_where_it_left(detector):
    img = data.astronaut()[:320, 80:400]
    face = detector.detect([img])[0][0]
    shifted = face.landmarks + [4.0, -3.0]  # last frame's landmarks, a few px off
    again = detector.redetect(img, shifted)
    assert again is not None and again.score > 0.7
    assert np.linalg.norm(again.landmarks - face.landmarks, axis=1).mean() < 1.5
    x1, y1, x2, y2 = again.box
    assert x1 < face.landmarks[:, 0].min() and x2 > face.landmarks[:, 0].max()
    assert detector.redetect(np.full_like(img, 128), face.landmarks) is None
