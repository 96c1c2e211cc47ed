"""Target selection and tracking: box overlap, the three rules, continuity over time, re-acquiring, the descriptor."""
import numpy as np
import pytest
from skimage import data

from faceswap.errors import UserError
from faceswap.extract.detect import Detection
from faceswap.extract.track import (TargetTracker, TrackerSettings, appearance_descriptor, descriptor_similarity, iou,
                                    landmark_distance, select_by_rule)


def _face(x, y, w, score=0.99):
    box = np.array([x, y, x + w, y + 1.2 * w], dtype=float)
    lm = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * [w, 1.2 * w] + [x, y]
    return Detection(box, score, lm)


def test_iou_known_values():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_landmark_distance_is_relative_to_face_size():
    a, b = _face(0, 0, 100), _face(10, 0, 100)
    c, d = _face(0, 0, 50), _face(5, 0, 50)
    assert landmark_distance(a.landmarks, b.landmarks) == pytest.approx(landmark_distance(c.landmarks, d.landmarks))
    assert landmark_distance(a.landmarks, a.landmarks) == 0.0


def test_rules_pick_the_expected_face():
    faces = [_face(10, 10, 40), _face(480, 300, 120), _face(290, 210, 50)]
    shape = (480, 640, 3)
    assert select_by_rule(faces, "largest", shape) == 1
    assert select_by_rule(faces, "central", shape) == 2
    assert select_by_rule(faces, "reference", shape, similarity=lambda i: [0.1, 0.2, 0.9][i]) == 2
    assert select_by_rule([], "largest", shape) is None
    with pytest.raises(UserError):
        select_by_rule(faces, "tallest", shape)


def test_tracker_keeps_the_target_against_a_face_of_similar_size():
    tr = TargetTracker("largest", TrackerSettings(switch_ratio=1.3))
    frame = np.zeros((480, 640, 3), np.uint8)
    picks = []
    for t in range(10):
        a = _face(100 + 3 * t, 100, 80)  # the first target, moving right
        b = _face(400, 150, 70 + 3 * t)  # another face that grows past it, but by less than 1.3x
        faces = [b, a] if t % 2 else [a, b]  # the detector's order is arbitrary
        picks.append(faces[tr.update(frame, faces)] is a)
    assert all(picks)
    assert tr.continued


def test_rule_takes_over_from_a_clearly_smaller_track():
    # the track started on a bystander while the main face was not found; once the main face is
    # clearly bigger, the rule gives it the target
    tr = TargetTracker("largest", TrackerSettings(switch_ratio=1.3))
    frame = np.zeros((480, 640, 3), np.uint8)
    bystander, main = _face(450, 50, 50), _face(150, 100, 110)
    assert tr.update(frame, [bystander]) == 0
    assert tr.update(frame, [bystander, main]) == 1 and not tr.continued
    assert tr.update(frame, [bystander, main]) == 1 and tr.continued


def test_lost_target_is_waited_for_instead_of_jumping_to_a_bystander():
    tr = TargetTracker("largest", TrackerSettings(max_gap=2))
    frame = np.zeros((480, 640, 3), np.uint8)
    main, bystander = _face(100, 100, 100), _face(400, 100, 90)
    moved = _face(110, 100, 100)
    assert tr.update(frame, [main, bystander]) == 0
    assert tr.update(frame, [bystander]) is None  # the main face is missed: no target, not the bystander
    assert tr.update(frame, [bystander, moved]) == 1 and tr.continued  # back within max_gap: same track
    for _ in range(3):
        tr.update(frame, [bystander])
    assert tr.update(frame, [bystander]) == 0  # waited max_gap frames: the rule picks again


def test_tracker_reacquires_by_the_rule_after_a_miss():
    tr = TargetTracker("largest", TrackerSettings(max_gap=0))
    frame = np.zeros((480, 640, 3), np.uint8)
    small, big = _face(100, 100, 60), _face(400, 100, 70)
    assert tr.update(frame, [small]) == 0
    assert tr.update(frame, [big, small]) == 1  # continues the track (big is not 1.3x bigger)
    assert tr.update(frame, []) is None and not tr.continued
    assert tr.update(frame, [small, big]) == 1  # after the miss the rule picks the largest again
    assert not tr.continued


def test_central_rule_switch_margin():
    tr = TargetTracker("central", TrackerSettings(switch_ratio=1.3))
    frame = np.zeros((480, 640, 3), np.uint8)
    off, mid = _face(20, 20, 60), _face(290, 200, 60)
    assert tr.update(frame, [off]) == 0
    assert tr.update(frame, [off, mid]) == 1  # far nearer the centre: takes over


def test_tracker_needs_a_reference_for_the_reference_rule():
    with pytest.raises(UserError, match="reference"):
        TargetTracker("reference")
    with pytest.raises(UserError, match="largest"):
        TargetTracker("biggest")


def _crop(img, x, y, s=96):
    return img[y:y + s, x:x + s]


def test_descriptor_prefers_the_same_face_over_another():
    astro = data.astronaut()
    grace = np.array(data.coffee())  # any other photo stands in for another person's crop
    a1 = _crop(astro, 180, 70)
    a2 = np.clip(_crop(astro, 182, 72).astype(int) + 12, 0, 255).astype(np.uint8)  # shifted, brighter
    other = _crop(grace, 200, 150)
    da1, da2, do = (appearance_descriptor(x) for x in (a1, a2, other))
    assert descriptor_similarity(da1, da1) == pytest.approx(1.0)
    assert descriptor_similarity(da1, da2) > descriptor_similarity(da1, do) + 0.2


def test_reference_rule_picks_the_face_like_the_reference_and_skips_strangers():
    from faceswap.extract import track

    frame = np.zeros((480, 640, 3), np.uint8)
    a, b = _face(100, 100, 80), _face(400, 100, 120)
    ref = np.array([1.0, 0.0])
    # stand-in descriptors: the face at x < 300 is the reference person
    orig = track.face_descriptor
    track.face_descriptor = lambda img, lm: np.array([1.0, 0.0]) if lm[0, 0] < 300 else np.array([0.0, 1.0])
    try:
        tr = TargetTracker("reference", TrackerSettings(reference_min=0.5), reference=ref)
        assert tr.update(frame, [b, a]) == 1
        assert tr.update(frame, [a, b]) == 0
        assert tr.update(frame, [b]) is None  # only a stranger in view: no target
    finally:
        track.face_descriptor = orig
