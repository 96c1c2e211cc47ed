"""render(): determinism, identities that differ, a true swap with B's geometry, truth that lands on the drawing."""
import numpy as np
import pytest

from faceswap.synth import BUILTIN_ACTORS, Performance, random_actor, random_performance, render
from faceswap.synth.params import on_set_of
from faceswap.synth.textures import backdrop

A, B = BUILTIN_ACTORS["A"], BUILTIN_ACTORS["B"]
POSES = [Performance(), Performance(yaw=30, pitch=12, roll=-10, smile=0.6, mouth_open=0.5),
         Performance(yaw=-33, pitch=-18, roll=14, x=0.42, y=0.55, scale=0.45, brow_raise=1, light_azimuth=-40),
         Performance(x=0.6, y=0.45, scale=0.62, zoom=1.04, shake_x=0.003, light_intensity=0.8)]


def _luma(img, xy):
    x, y = np.round(xy).astype(int)
    return float(img[y, x] @ [0.299, 0.587, 0.114])


def test_render_is_deterministic():
    p = POSES[1]
    r1, r2 = render(A, p, extra=[(BUILTIN_ACTORS["C"], Performance(x=0.87, y=0.3, scale=0.28))]), render(
        A, p, extra=[(BUILTIN_ACTORS["C"], Performance(x=0.87, y=0.3, scale=0.28))])
    assert np.array_equal(r1.image, r2.image) and np.array_equal(r1.mask, r2.mask)
    assert np.array_equal(r1.landmarks, r2.landmarks)


def test_output_types_and_shapes():
    r = render(B, POSES[2], 320, 240)
    assert r.image.shape == (240, 320, 3) and r.image.dtype == np.uint8
    assert r.mask.shape == (240, 320) and r.mask.dtype == np.uint8 and set(np.unique(r.mask)) <= {0, 255}
    assert r.landmarks.shape == (5, 2) and r.landmarks.dtype == np.float64
    assert r.box.shape == (4,) and r.box[0] < r.box[2] and r.box[1] < r.box[3]
    assert r.face_visible and r.extra_landmarks == [] and r.extra_boxes == []
    with pytest.raises(ValueError):
        render(A, Performance(), 8, 8)


def test_a_and_b_differ_clearly_in_the_face():
    for p in POSES:
        ra, rb = render(A, p), render(B, p)
        skin_a = ra.image[ra.mask > 0].astype(float).mean(axis=0)
        skin_b = rb.image[rb.mask > 0].astype(float).mean(axis=0)
        assert np.abs(skin_a - skin_b).sum() > 120, (skin_a, skin_b)


def test_truth_has_b_geometry_and_a_face():
    truth_actor = on_set_of(A, B)
    for p in POSES:
        rb, rt = render(B, p), render(truth_actor, p)
        assert np.abs(rt.landmarks - rb.landmarks).max() < 1e-9
        assert np.array_equal(rt.box, rb.box)
        inside = (rb.mask > 0) & (rt.mask > 0)
        diff = np.abs(rt.image.astype(int) - rb.image.astype(int)).sum(axis=2)
        assert diff[inside].mean() > 60
        # same room: the top corners (far from any head) are identical
        assert np.array_equal(rt.image[:30, :60], rb.image[:30, :60])
        assert np.array_equal(rt.image[:30, -60:], rb.image[:30, -60:])
        # the faces overlap (shape and hair differ by identity, the place does not)
        union = (rb.mask > 0) | (rt.mask > 0)
        assert inside.sum() / union.sum() > 0.6


def test_landmarks_land_on_the_drawn_features():
    for app in list(BUILTIN_ACTORS.values()) + [random_actor(5)]:
        for p in POSES:
            p = p.replace(gaze_x=0.0, gaze_y=0.0, blink=0.0)
            r = render(app, p)
            lm = r.landmarks
            for eye in lm[:2]:
                assert _luma(r.image, eye) < 70, (app.name, p)  # the pupil
            ij = np.round(lm).astype(int)
            assert (r.mask[ij[:, 1], ij[:, 0]] == 255).all(), app.name
            x1, y1, x2, y2 = r.box
            assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
            # mouth corners sit at the ends of the mouth: between them lips (or teeth, or the dark inside),
            # just beyond them skin
            lm_, rm = lm[3], lm[4]
            along = np.array([lm_ + t * (rm - lm_) for t in np.linspace(0.1, 0.9, 17)])
            beyond = np.array([lm_ - 0.12 * (rm - lm_), rm + 0.12 * (rm - lm_)])

            def colours(pts):
                ij = np.round(pts).astype(int)
                return r.image[ij[:, 1], ij[:, 0]].astype(float)

            inner, outer = colours(along).mean(axis=0), colours(beyond).mean(axis=0)
            if app.beard == 0:  # a beard around the mouth is as dark as the lips
                assert np.linalg.norm(inner - outer) > 20, app.name


def test_blink_closes_the_eyes_and_gaze_moves_the_pupil():
    lit_from_below = Performance(light_elevation=-20.0)  # keeps the catchlight under the pupil
    open_, shut = render(A, lit_from_below), render(A, lit_from_below.replace(blink=1.0))
    for eye in open_.landmarks[:2]:
        above = eye - [0, 3]  # inside the iris when open, on the lid when shut
        assert _luma(open_.image, above) < 90 and _luma(shut.image, above) > 140
    look = render(A, Performance(gaze_x=25.0))
    x_dark = [np.argmin(look.image[int(round(e[1])), int(e[0]) - 15:int(e[0]) + 16].sum(axis=1)) - 15
              for e in look.landmarks[:2]]
    assert all(d > 1 for d in x_dark)


def test_turned_away_and_out_of_view_have_no_face():
    for p in (Performance(yaw=180), Performance(yaw=165, pitch=5), Performance(x=-1.5)):
        r = render(A, p)
        assert not r.face_visible and r.landmarks is None and r.box is None
        assert r.mask.max() == 0
    gone = render(B, Performance(x=-1.5))
    assert np.array_equal(gone.image, backdrop(B, 640, 480))


def test_second_face_is_reported_when_in_view_and_not_when_hidden():
    c = BUILTIN_ACTORS["C"]
    r = render(A, Performance(x=0.42), extra=[(c, Performance(x=0.87, y=0.3, scale=0.28))])
    assert len(r.extra_landmarks) == 1 and len(r.extra_boxes) == 1
    for eye in r.extra_landmarks[0][:2]:
        assert _luma(r.image, eye) < 90
    # the main face is unaffected by who stands behind
    alone = render(A, Performance(x=0.42))
    assert np.array_equal(alone.mask, r.mask) and np.array_equal(alone.landmarks, r.landmarks)
    hidden = render(A, Performance(), extra=[(c, Performance(x=0.5, y=0.45, scale=0.3))])
    assert hidden.extra_landmarks == []


def test_a_performance_renders_across_a_take():
    # every frame of a real performance renders, with the face visible and the mask non-empty
    for p in random_performance(20, 9):
        r = render(B, p, 320, 240)
        assert r.face_visible and r.mask.sum() > 0
