"""Head pose and projection: known answers for rotations, landmark layout, visibility."""
import numpy as np

from faceswap.synth import Performance
from faceswap.synth import geometry as geo


def test_rotation_known_answers():
    assert np.allclose(geo.rotation(0, 0, 0), np.eye(3))
    # yaw > 0 turns the nose (+z) toward image-right (+x); pitch > 0 looks up (-y, y is down)
    assert np.allclose(geo.rotation(90, 0, 0) @ [0, 0, 1], [1, 0, 0])
    assert np.allclose(geo.rotation(0, 90, 0) @ [0, 0, 1], [0, -1, 0])
    # roll > 0 is clockwise on screen: +x goes to +y (down)
    assert np.allclose(geo.rotation(0, 0, 90) @ [1, 0, 0], [0, 1, 0])
    r = geo.rotation(23, -11, 7)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1)


def test_smooth_max():
    assert geo.smooth_max(1.0, 0.0, 0.1) == 1.0
    assert np.isclose(geo.smooth_max(0.5, 0.5, 0.2), 0.55)  # equal inputs get k/4 extra
    assert geo.smooth_max(0.5, 0.45, 0.2) > 0.5


def test_frontal_landmarks_are_symmetric_and_in_mtcnn_order():
    lm = geo.true_landmarks(Performance(), 640, 480)
    le, re, nose, lm_, rm = lm
    assert le[0] < re[0] and lm_[0] < rm[0]
    assert np.isclose(le[1], re[1]) and np.isclose(lm_[1], rm[1])
    assert le[1] < nose[1] < lm_[1]
    assert np.isclose((le[0] + re[0]) / 2, 320) and np.isclose(nose[0], 320)
    # the face centre (x, y) sits between eyes and mouth
    assert le[1] < 240 < lm_[1]


def test_scale_and_position_move_landmarks_as_documented():
    a = geo.true_landmarks(Performance(scale=0.4), 640, 480)
    b = geo.true_landmarks(Performance(scale=0.8), 640, 480)
    assert np.isclose((b[1, 0] - b[0, 0]) / (a[1, 0] - a[0, 0]), 2.0)
    c = geo.true_landmarks(Performance(x=0.25), 640, 480)
    assert np.allclose(c - geo.true_landmarks(Performance(), 640, 480), [[-160, 0]] * 5)


def test_yaw_moves_the_nose_toward_image_right():
    front = geo.true_landmarks(Performance(), 640, 480)
    turned = geo.true_landmarks(Performance(yaw=30), 640, 480)
    assert turned[2, 0] - turned[:2, 0].mean() > 10
    assert np.isclose(front[2, 0], front[:2, 0].mean())
    # the far eye (image-left) is foreshortened more than the near one would be
    assert turned[1, 0] - turned[0, 0] < front[1, 0] - front[0, 0]


def test_smile_widens_the_mouth():
    a = geo.true_landmarks(Performance(smile=0.0), 640, 480)
    b = geo.true_landmarks(Performance(smile=1.0), 640, 480)
    assert b[4, 0] - b[3, 0] > a[4, 0] - a[3, 0] and b[3, 1] < a[3, 1]
    assert np.allclose(a[:3], b[:3])


def test_visibility():
    assert geo.face_visible(Performance(yaw=35, pitch=20), 640, 480)
    assert not geo.face_visible(Performance(yaw=180), 640, 480)
    assert not geo.face_visible(Performance(x=-1.5), 640, 480)
    assert not geo.face_visible(Performance(x=0.98), 640, 480)  # landmarks leave the frame


def test_camera_zoom_scales_about_the_frame_centre():
    base = geo.true_landmarks(Performance(x=0.6), 640, 480)
    zoomed = geo.true_landmarks(Performance(x=0.6, zoom=2.0), 640, 480)
    assert np.allclose(zoomed - [320, 240], 2 * (base - [320, 240]))
    shaken = geo.true_landmarks(Performance(shake_x=0.01, shake_y=-0.02), 640, 480)
    assert np.allclose(shaken - geo.true_landmarks(Performance(), 640, 480), [[4.8, -9.6]] * 5)
