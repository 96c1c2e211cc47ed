"""Training data: alignments to crop landmarks, masks, flips, the time split, the resumable sampler, bad folders."""
import json
import shutil

import cv2
import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.train import data as D
from tests.train.fakes import TEMPLATE_64, make_extract_folder


def test_scale_landmarks_keeps_pixel_centres():
    # The centre of a 4 px image (1.5) is the centre of an 8 px one (3.5); the first pixel's left edge maps too.
    assert np.allclose(D.scale_landmarks(np.array([[1.5, -0.5]]), 4, 8), [[3.5, -0.5]])


def test_alignments_matrix_maps_frame_landmarks_into_the_crop(tmp_path):
    folder = make_extract_folder(tmp_path / "f", n=3, size=64, seed=4)
    size, found = D.read_crop_landmarks(folder / "alignments.json")
    doc = json.loads((folder / "alignments.json").read_text())
    assert size == 64 and set(found) == {"000000", "000001", "000002"}
    frame_lm = np.array(doc["frames"][1]["faces"][0]["landmarks_smoothed"])
    assert np.allclose(found["000001"][1], frame_lm - [100, 50], atol=1e-5)
    assert found["000002"][0] == 2


def test_landmark_mask_covers_the_face_only():
    m = D.landmark_mask(TEMPLATE_64, 64)
    assert m.dtype == np.uint8 and m.shape == (64, 64)
    for x, y in TEMPLATE_64.round().astype(int):
        assert m[y, x] == 255
    assert m[0, 0] == m[0, 63] == m[63, 0] == 0
    centred = D.landmark_mask(TEMPLATE_64 - [0.5, 0], 64)  # symmetric about the image's centre line
    assert np.abs(centred.astype(int) - centred[:, ::-1]).max() <= 1
    assert 0 < (m == 255).mean() < 0.6
    assert ((m > 0) & (m < 255)).any()  # feathered edge
    with pytest.raises(ValueError):
        D.landmark_mask(np.zeros((5, 2)), 64)


def test_flip_mirrors_face_and_swaps_left_right():
    face = np.zeros((8, 8, 3), np.uint8)
    face[2, 1] = 255
    mask = face[..., 0].copy()
    lm = np.array([[1.0, 2.0], [6.0, 2.0], [3.5, 4.0], [2.0, 6.0], [5.0, 6.0]], np.float32)
    f, m, l2 = D.flip_face(face, mask, lm)
    assert f[2, 6, 0] == 255 and m[2, 6] == 255
    assert np.allclose(l2, [[1.0, 2.0], [6.0, 2.0], [3.5, 4.0], [2.0, 6.0], [5.0, 6.0]])  # symmetric points map onto each other
    f2, m2, l3 = D.flip_face(f, m, l2)
    assert np.array_equal(f2, face) and np.array_equal(m2, mask) and np.allclose(l3, lm)


def test_split_by_time_holds_out_the_last_frames():
    train, val = D.split_by_time(20, 0.1)
    assert list(val) == [18, 19] and list(train) == list(range(18))
    assert [len(x) for x in D.split_by_time(1, 0.1)] == [1, 0]
    assert len(D.split_by_time(10, 0.0)[1]) == 0
    with pytest.raises(UserError, match="val_fraction"):
        D.split_by_time(10, 1.0)


def test_sampler_is_a_function_of_the_step():
    idx = {"a": np.arange(10), "b": np.arange(7)}
    s = D.PairBatchSampler(idx, 4, seed=3)
    fresh = [s.batch(i) for i in range(6)]
    later = D.PairBatchSampler(idx, 4, seed=3, start_step=4)
    it = iter(later)
    assert next(it) == fresh[4] and next(it) == fresh[5]
    # One pass over A's 10 faces in positions 0..9 sees each face once.
    a_seen = [k[0][0] for b in fresh[:3] for k in b][:10]
    assert sorted(a_seen) == list(range(10))
    assert D.PairBatchSampler(idx, 4, seed=4).batch(0) != fresh[0]


def test_sampler_shards_ranks_like_a_distributed_sampler():
    idx = {"a": np.arange(12), "b": np.arange(12)}
    r0 = [k[0][0] for k in D.PairBatchSampler(idx, 6, seed=0, rank=0, world=2).batch(0)]
    r1 = [k[0][0] for k in D.PairBatchSampler(idx, 6, seed=0, rank=1, world=2).batch(0)]
    assert sorted(r0 + r1) == list(range(12))


def test_augmenter_is_seeded_and_only_degrades_the_input():
    face = cv2.resize(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), (32, 32))
    aug = D.Augmenter(blur_p=0, noise_p=0, colour_p=1.0)
    a1, t1 = aug(face, 5)
    a2, t2 = aug(face, 5)
    assert np.array_equal(a1, a2) and np.array_equal(t1, t2)
    assert np.array_equal(a1, t1)  # colour changes apply to input and target alike
    assert not np.array_equal(t1, face) and not np.array_equal(aug(face, 6)[1], t1)
    noisy = D.Augmenter(colour_p=0, blur_p=0, noise_p=1.0)
    inp, target = noisy(face, 1)
    assert np.array_equal(target, face) and not np.array_equal(inp, face)


def test_load_faces_resizes_and_fits_masks(tmp_path):
    folder = make_extract_folder(tmp_path / "f", n=4, size=64, seed=1, masks=False)
    fs = D.load_faces(folder, 32, "data.a")
    assert fs.faces.shape == (4, 32, 32, 3) and fs.masks.shape == (4, 32, 32) and fs.true_masks == 0
    assert np.isfinite(fs.landmarks).all() and fs.landmarks.max() < 32
    # The fitted mask covers the drawn face's centre.
    assert fs.masks[:, 16, 16].min() == 255 and fs.masks[:, 0, 0].max() == 0
    with_masks = D.load_faces(make_extract_folder(tmp_path / "g", n=2, size=64, seed=1), 32, "data.a")
    assert with_masks.true_masks == 2


def test_dataset_items_have_the_expected_shapes(tmp_path):
    sets = {k: D.load_faces(make_extract_folder(tmp_path / k, n=4, seed=i), 32, k) for i, k in enumerate("ab")}
    ds = D.PairDataset(sets, D.Augmenter(), flip=0.5)
    item = ds[((0, 11), (1, 12))]
    assert item["a"]["input"].shape == (32, 32, 3) and item["b"]["mask"].shape == (32, 32)
    assert item["a"]["landmarks"].shape == (5, 2)
    again = ds[((0, 11), (1, 12))]
    assert all(np.array_equal(item[k][n], again[k][n]) for k in "ab" for n in item[k])


@pytest.mark.parametrize("case,needle", [
    ("missing", "does not exist"),
    ("no_faces_dir", "no faces/ folder"),
    ("empty", "holds no images"),
    ("mixed_sizes", "mixes extract runs"),
    ("bad_alignments", "alignments file"),
    ("corrupt_png", "could not be decoded"),
])
def test_bad_folders_are_one_line_user_errors(tmp_path, case, needle):
    folder = tmp_path / "f"
    if case != "missing":
        make_extract_folder(folder, n=3, size=64, seed=0)
    if case == "no_faces_dir":
        shutil.rmtree(folder / "faces")
    elif case == "empty":
        for p in (folder / "faces").iterdir():
            p.unlink()
    elif case == "mixed_sizes":
        cv2.imwrite(str(folder / "faces" / "000001.png"), np.zeros((48, 48, 3), np.uint8))
    elif case == "bad_alignments":
        (folder / "alignments.json").write_text('{"frames": 3}')
    elif case == "corrupt_png":
        (folder / "faces" / "000002.png").write_bytes(b"not a png")
    with pytest.raises(UserError) as exc:
        D.load_faces(folder, 32, "data.a")
    assert needle in str(exc.value) and "\n" not in str(exc.value)
