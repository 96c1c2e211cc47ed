"""Losses: SSIM against known answers and scikit-image, mask weighting, eye/mouth weights."""
import cv2
import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import structural_similarity

from faceswap.train.losses import LossConfig, face_loss, landmark_weights, ssim


def as_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(skimage.data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)


def test_ssim_of_identical_images_is_one(photo):
    x = as_tensor(photo)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_decreases_with_noise(photo):
    rng = np.random.default_rng(0)
    x = as_tensor(photo)
    scores = [ssim(x, (x + torch.from_numpy(rng.normal(0, s, x.shape)).float()).clamp(0, 1)).item()
              for s in (0.02, 0.05, 0.1, 0.2)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] < 0.6


@pytest.mark.parametrize("sigma", [10, 40])
def test_ssim_matches_skimage(photo, sigma):
    rng = np.random.default_rng(1)
    noisy = np.clip(photo + rng.normal(0, sigma, photo.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(photo, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert ssim(as_tensor(photo), as_tensor(noisy)).item() == pytest.approx(ref, abs=1e-2)


def test_landmark_weights_peak_at_eyes_and_mouth():
    lm = torch.tensor([[[10.0, 12.0], [22.0, 12.0], [16.0, 18.0], [12.0, 24.0], [20.0, 24.0]]])
    w = landmark_weights(lm, 32, eyes=2.0, mouth=1.0, radius=0.08)
    assert w.shape == (1, 1, 32, 32)
    assert w[0, 0, 12, 10].item() == pytest.approx(3.0, abs=1e-4)  # 1 + eyes at the eye
    assert w[0, 0, 24, 16].item() == pytest.approx(2.0, abs=1e-4)  # 1 + mouth between the corners
    assert w[0, 0, 0, 31].item() == pytest.approx(1.0, abs=1e-3)
    nan = landmark_weights(torch.full((1, 5, 2), float("nan")), 32, 2.0, 1.0)
    assert torch.equal(nan, torch.ones(1, 1, 32, 32))


def test_face_loss_is_zero_for_a_perfect_prediction_and_ignores_background():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    cfg = LossConfig(background_weight=0.0, eyes_weight=0, mouth_weight=0, mask="l1")
    perfect = face_loss(target, mask, target, mask, None, cfg)
    assert perfect["pixel"].item() == 0 and perfect["mask"].item() == 0
    assert perfect["ssim"].item() == pytest.approx(0, abs=1e-5)
    outside = target.clone()
    outside[..., :4, :] = 0  # wrong only where the mask is 0
    assert face_loss(outside, mask, target, mask, None, cfg)["pixel"].item() == 0
    inside = target.clone()
    inside[..., 10:20, 10:20] = 0
    assert face_loss(inside, mask, target, mask, None, cfg)["pixel"].item() > 0.1
    with_bg = LossConfig(background_weight=0.5, eyes_weight=0, mouth_weight=0)
    assert face_loss(outside, mask, target, mask, None, with_bg)["pixel"].item() > 0


def test_total_is_the_weighted_sum():
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    pm, tm = torch.rand(2, 1, 32, 32), (torch.rand(2, 1, 32, 32) > 0.5).float()
    cfg = LossConfig(pixel="mse", pixel_weight=2.0, ssim_weight=0.5, mask_weight=3.0, ssim_window=7)
    t = face_loss(pred, pm, target, tm, None, cfg)
    assert t["total"].item() == pytest.approx(2 * t["pixel"].item() + 0.5 * t["ssim"].item() + 3 * t["mask"].item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss.pixel"):
        LossConfig(pixel="huber")
