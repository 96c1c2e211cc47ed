"""Alignment: Umeyama recovers known similarities, the template scales with coverage, crop <-> frame round trips."""
import cv2
import numpy as np
import pytest

from faceswap.extract.align import (ARCFACE_112, align_face, alignment_matrix, paste_matrix, similarity_params,
                                    template_points, transform_points, umeyama, warp_from_crop, warp_to_crop)


def _similarity(scale, angle_deg, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


@pytest.mark.parametrize("scale,angle,tx,ty", [(1.0, 0, 0, 0), (2.5, 30, -40, 12.5), (0.3, -170, 300, -7), (1.7, 90, 0.5, 0.25)])
def test_umeyama_recovers_a_known_similarity(scale, angle, tx, ty):
    rng = np.random.default_rng(1)
    src = rng.uniform(-50, 50, (5, 2))
    m = _similarity(scale, angle, tx, ty)
    t = umeyama(src, transform_points(src, m))
    assert t.shape == (3, 3)
    np.testing.assert_allclose(t[:2], m, atol=1e-9)
    np.testing.assert_allclose(t[2], [0, 0, 1])
    s, r, x, y = similarity_params(t[:2])
    assert s == pytest.approx(scale) and np.rad2deg(r) == pytest.approx(angle) and (x, y) == pytest.approx((tx, ty))


def test_umeyama_least_squares_on_noisy_points():
    rng = np.random.default_rng(2)
    src = rng.uniform(-50, 50, (200, 2))
    m = _similarity(1.3, 20, 5, -3)
    dst = transform_points(src, m) + rng.normal(0, 0.5, src.shape)
    t = umeyama(src, dst)[:2]
    np.testing.assert_allclose(t[:, :2], m[:, :2], atol=0.005)
    np.testing.assert_allclose(t[:, 2], m[:, 2], atol=0.15)


def test_umeyama_never_reflects():
    # A mirrored point set is best fit by a reflection; the fix must return a proper rotation instead.
    src = np.array([[0.0, 0], [10, 0], [0, 5], [3, 8], [7, 2]])
    dst = src * [-1, 1]
    t = umeyama(src, dst)
    assert np.linalg.det(t[:2, :2]) > 0


def test_umeyama_rejects_bad_input():
    with pytest.raises(ValueError):
        umeyama(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        umeyama(np.ones((5, 2)), np.zeros((5, 2)))


def test_template_at_coverage_one_is_the_112_template():
    np.testing.assert_allclose(template_points(112, 1.0), ARCFACE_112, atol=1e-9)


def test_template_scales_about_the_crop_centre_with_coverage():
    size = 256
    centre = (size - 1) / 2
    full, half = template_points(size, 1.0), template_points(size, 0.5)
    np.testing.assert_allclose(half - centre, (full - centre) * 0.5, atol=1e-9)
    # the face square of side coverage * size: the template's span is that share of the crop
    span = lambda t: np.ptp(t, axis=0)  # noqa: E731
    np.testing.assert_allclose(span(template_points(size, 0.75)) / span(template_points(size, 1.0)), 0.75)
    np.testing.assert_allclose(template_points(2 * size, 0.75) + 0.5, 2 * (template_points(size, 0.75) + 0.5))


def test_alignment_matrix_puts_landmarks_on_the_template():
    m = _similarity(0.4, -12, 100, 50)
    lm = transform_points(template_points(256, 0.75), cv2.invertAffineTransform(m))
    got = alignment_matrix(lm, 256, 0.75)
    np.testing.assert_allclose(got, m, atol=1e-9)
    np.testing.assert_allclose(transform_points(lm, got), template_points(256, 0.75), atol=1e-9)


def test_paste_matrix_inverts():
    m = _similarity(1.9, 33, -20, 41)
    p = paste_matrix(m)
    pts = np.array([[0.0, 0], [10, 20], [-5, 7]])
    np.testing.assert_allclose(transform_points(transform_points(pts, m), p), pts, atol=1e-9)


def _smooth_frame(h=240, w=320):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(xx / 17) * np.cos(yy / 23), 128 + 90 * np.cos(xx / 29 + yy / 31),
                    128 + 80 * np.sin((xx + yy) / 37)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_unchanged_crop_pasted_back_reproduces_the_frame_region():
    frame = _smooth_frame()
    lm = np.array([[140.0, 100], [180, 102], [160, 125], [145, 148], [178, 150]])
    crop, m = align_face(frame, lm, 256, 0.75)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    back = warp_from_crop(crop, m, frame.shape)
    assert back.shape == frame.shape
    # the region the crop covers, away from its border (where interpolation meets the edge)
    inner = warp_from_crop(np.full((256, 256), 255, np.uint8), m, frame.shape, interpolation=cv2.INTER_NEAREST)
    region = cv2.erode(inner, np.ones((5, 5), np.uint8)) > 0
    assert region.sum() > 1000
    err = np.abs(back.astype(int) - frame.astype(int))[region]
    assert err.mean() < 1.5 and err.max() <= 12
    outside = cv2.dilate(inner, np.ones((3, 3), np.uint8)) == 0
    assert outside.sum() > 1000 and (back[outside] == 0).all()  # outside the crop nothing is pasted


def test_warp_to_crop_samples_the_mapped_point():
    frame = _smooth_frame()
    m = _similarity(1.5, 20, -100, -40)
    crop = warp_to_crop(frame, m, 128, interpolation=cv2.INTER_NEAREST)
    for x, y in [(60, 60), (100, 40), (20, 110)]:
        fx, fy = np.round(transform_points(np.array([[x, y]], float), paste_matrix(m))[0]).astype(int)
        np.testing.assert_array_equal(crop[y, x], frame[fy, fx])
