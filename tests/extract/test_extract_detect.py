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
