"""Forensic data: time splits without leaks, clip windows, crops cut with an alignments file, H.264 re-encoding."""
import json

import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.forensics import data as fd


def test_split_by_time_is_contiguous_with_a_gap():
    frames = np.arange(100)
    s = fd.split_by_time(frames, 0.6, gap=10)
    assert (s[:60] == "train").all() and (s[60:70] == "gap").all() and (s[70:] == "test").all()
    # A shared span puts the cut at the same frame for every video on that timeline.
    s2 = fd.split_by_time(np.arange(50, 100), 0.6, gap=10, span=(0, 99))
    assert (s2[:10] == "train").all() and (s2[10:20] == "gap").all() and (s2[20:] == "test").all()


def test_no_frame_or_neighbour_on_both_sides():
    fs = fd.toy_faceset(60, size=32, seed=0, clip=6)
    for src in np.unique(fs.source):
        m = fs.source == src
        train, test = fs.frame[m & (fs.split == "train")], fs.frame[m & (fs.split == "test")]
        assert len(train) and len(test) and train.max() < test.min()


def test_clip_windows_stay_inside_one_run():
    frames = np.array([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13])  # frame 6 had no face
    n = len(frames)
    fs = fd.FaceSet(np.zeros((n, 4, 4, 3), np.uint8), np.zeros(n), np.full(n, "v"), frames, np.full(n, "test"))
    wins = fd.clip_windows(fs, window=4, stride=2)
    assert [fs.frame[w].tolist() for w in wins] == [[0, 1, 2, 3], [2, 3, 4, 5], [7, 8, 9, 10], [9, 10, 11, 12]]
    samples, labels, groups = fd.samples_for("clip", fs, 4, 2)
    assert len(samples) == 4 and samples[0].shape == (4, 4, 4, 3) and len(labels) == 4


def test_clip_windows_follow_the_sampling_step():
    frames = np.array([0, 2, 4, 6, 10, 12, 14])  # every 2nd frame was cut; frame 8 had no face
    n = len(frames)
    fs = fd.FaceSet(np.zeros((n, 4, 4, 3), np.uint8), np.zeros(n), np.full(n, "v"), frames, np.full(n, "test"))
    assert [fs.frame[w].tolist() for w in fd.clip_windows(fs, 3, 1)] == [[0, 2, 4], [2, 4, 6], [10, 12, 14]]


def test_faceset_save_load_round_trip(tmp_path):
    fs = fd.toy_faceset(6, size=16, seed=1)
    fs.save(tmp_path / "f.npz")
    back = fd.FaceSet.load(tmp_path / "f.npz")
    assert np.array_equal(back.crops, fs.crops) and (back.split == fs.split).all() and (back.source == fs.source).all()
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(UserError):
        fd.FaceSet.load(tmp_path / "bad.npz")


def test_rescale_matrix_adds_margin_around_the_crop_centre():
    m = np.array([[2.0, 0.0, -10.0], [0.0, 2.0, -20.0]])
    same = fd.rescale_matrix(m, 64, 64, 0.0)
    assert np.allclose(same, m)
    wide = fd.rescale_matrix(m, 64, 128, 0.25)
    # The old crop centre (frame point mapping to 32, 32) lands in the new centre (64, 64).
    p = np.linalg.solve(m[:, :2], np.array([32.0, 32.0]) - m[:, 2])
    assert np.allclose(wide[:, :2] @ p + wide[:, 2], [64, 64])
    # The old crop spans half of the new one: 128 / (64 * 1.5) * 64 = 85.3 px.
    q = np.linalg.solve(m[:, :2], np.array([64.0, 32.0]) - m[:, 2])
    assert np.allclose((wide[:, :2] @ q + wide[:, 2])[0] - 64, 128 / 1.5 / 2)


def _video_with_alignments(tmp_path, n=20, crop=32):
    """A video of a bright textured square drifting right, and an alignments file that follows it (frame 5 missed)."""
    from faceswap.video import VideoWriter

    y, x = np.indices((crop, crop))
    # Smooth, so that H.264 keeps it: the test checks geometry, not codec loss.
    tex = np.stack([80 + 5 * x, 80 + 5 * y, np.full_like(x, 200)], -1).astype(np.uint8)
    frames, records = [], []
    with VideoWriter(tmp_path / "v.mp4", fps=25, crf=10) as w:
        for i in range(n):
            img = np.full((96, 128, 3), 30, np.uint8)
            x0, y0 = 20 + 2 * i, 30
            img[y0:y0 + crop, x0:x0 + crop] = tex
            w.write(img)
            frames.append(img)
            mat = [[1.0, 0.0, -float(x0)], [0.0, 1.0, -float(y0)]]
            face = {"box": [x0, y0, x0 + crop, y0 + crop], "score": 0.99, "landmarks": [[x0 + 8, y0 + 8]] * 5, "matrix": mat}
            records.append({"index": i, "name": f"{i:06d}", "target": None if i == 5 else 0, "faces": [] if i == 5 else [face]})
    doc = {"schema": "faceswap.alignments", "version": 1,
           "source": {"path": str(tmp_path / "v.mp4"), "kind": "video", "frames": n, "width": 128, "height": 96, "fps": 25.0},
           "crop": {"size": crop, "coverage": 0.75}, "settings": {}, "frames": records}
    (tmp_path / "alignments.json").write_text(json.dumps(doc))
    return tex


def test_crops_follow_the_alignments(tmp_path):
    tex = _video_with_alignments(tmp_path)
    mats, size = fd.load_targets(tmp_path / "alignments.json")
    assert size == 32 and 5 not in mats and len(mats) == 19
    crops, idx = fd.crops_from_video(tmp_path / "v.mp4", mats, size, 32, 0.0)
    assert crops.shape == (19, 32, 32, 3) and 5 not in idx.tolist()
    # The square is re-found in every crop (up to H.264 at CRF 10).
    err = np.abs(crops.astype(int) - tex[None].astype(int))[:, 2:-2, 2:-2].mean()
    assert err < 6


def test_reencoding_degrades_with_crf(tmp_path):
    _video_with_alignments(tmp_path)
    src = fd.VideoSource("v", tmp_path / "v.mp4", tmp_path / "alignments.json", fd.REAL, "v")
    sets = {lv: fd.source_faces(src, 32, 0.25, lv, tmp_path / "work", train_fraction=0.5, gap=2) for lv in ("raw", "c23", "c40")}
    assert (tmp_path / "work" / "v_c40.mp4").is_file()
    for lv in ("c23", "c40"):
        assert np.array_equal(sets[lv].frame, sets["raw"].frame) and (sets[lv].split == sets["raw"].split).all()
    d23 = np.abs(sets["c23"].crops.astype(int) - sets["raw"].crops).mean()
    d40 = np.abs(sets["c40"].crops.astype(int) - sets["raw"].crops).mean()
    assert d40 > d23
    assert set(sets["raw"].split) == {"train", "test"}
    twice = fd.VideoSource("v", tmp_path / "v.mp4", tmp_path / "alignments.json", fd.REAL, "v", second_encode=30)
    again = fd.source_faces(twice, 32, 0.25, "raw", tmp_path / "work", train_fraction=0.5, gap=2)
    assert (tmp_path / "work" / "v_raw_crf30.mp4").is_file()
    assert 0 < np.abs(again.crops.astype(int) - sets["raw"].crops).mean() < d40  # same frames, one more (mild) encoding


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        fd.load_targets(tmp_path / "missing.json")
    (tmp_path / "a.json").write_text('{"schema": "something else"}')
    with pytest.raises(UserError):
        fd.load_targets(tmp_path / "a.json")
    with pytest.raises(UserError):
        fd.reencode(tmp_path / "missing.mp4", tmp_path / "o.mp4", 23)
