"""The extract stage through its Python API: outputs, unreadable and odd images, masks, skip and resume."""
import json

import cv2
import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.extract.alignments import load_alignments
from faceswap.extract.pipeline import ALIGNMENTS, PARTIAL, extract
from tests.extract.clips import synth_frames, write_images


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Five frames: faces (one grayscale, one RGBA), a blank frame and a corrupt file."""
    folder = tmp_path_factory.mktemp("mixed")
    renders = synth_frames(3, seed=11)
    imgs = [r.image for r in renders]
    write_images(folder, imgs[:1])  # frame_000.png
    cv2.imwrite(str(folder / "frame_001.png"), cv2.cvtColor(imgs[1], cv2.COLOR_RGB2GRAY))
    rgba = cv2.cvtColor(imgs[2], cv2.COLOR_RGB2BGRA)
    rgba[..., 3] = 200
    cv2.imwrite(str(folder / "frame_002.png"), rgba)
    cv2.imwrite(str(folder / "frame_003.png"), np.full((240, 320, 3), 90, np.uint8))
    (folder / "frame_004.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_image_folder_with_odd_and_unreadable_images(mixed_folder, tmp_path, small_settings, capsys):
    res = extract(mixed_folder, tmp_path / "out", small_settings(), device="cpu", progress=False)
    al = load_alignments(tmp_path / "out" / ALIGNMENTS)
    assert [r.name for r in al.frames] == [f"frame_{i:03d}" for i in range(5)]
    assert [r.target is not None for r in al.frames] == [True, True, True, False, False]
    assert al.frame(3).faces == [] and al.frame(3).error is None  # blank: recorded, not dropped
    assert al.frame(4).faces == [] and "frame_004.png" in al.frame(4).error
    assert "frame_004.png" in capsys.readouterr().err
    faces = sorted(p.name for p in (tmp_path / "out" / "faces").iterdir())
    assert faces == ["frame_000.png", "frame_001.png", "frame_002.png"]
    crop = cv2.imread(str(tmp_path / "out" / "faces" / "frame_000.png"))
    assert crop.shape == (64, 64, 3)
    assert res.summary()["misses"] == 2 and res.summary()["errors"] == 1
    assert not (tmp_path / "out" / PARTIAL).exists()
    line = res.summary_line()
    for word in ("5 frames", "3 frames with a target", "2 misses", " s "):
        assert word in line


def test_synth_video_writes_true_masks_and_a_valid_file(synth_clip, tmp_path, small_settings):
    video, renders = synth_clip
    res = extract(video, tmp_path / "out", small_settings(size=96), device="cpu", progress=False)
    al = res.alignments
    assert len(al) == len(renders) and al.source["kind"] == "video" and al.source["width"] == 320
    assert al.summary()["targets"] == len(renders)
    masks = sorted((tmp_path / "out" / "masks").iterdir())
    assert [p.stem for p in masks] == [f"{i:06d}" for i in range(len(renders))]
    # the warped true mask covers the crop's centre (the face) and not its corners
    m = cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE)
    assert m.shape == (96, 96) and m[48, 48] == 255 and m[0, 0] == 0
    # the target's landmarks land near the truth
    for i, r in enumerate(renders):
        err = np.linalg.norm(al.target_face(i).landmarks - r.landmarks, axis=1).mean()
        assert err < 0.1 * np.ptp(r.landmarks[:, 1]) + 3
    np.testing.assert_allclose(al.crop["template"], np.round(al.crop["template"], 4))
    data = json.loads((tmp_path / "out" / ALIGNMENTS).read_text())
    assert data["settings"]["smoothing"]["method"] == "one_euro"


def test_rerun_is_nothing_to_do_and_other_settings_redo(synth_clip, tmp_path, small_settings):
    video, _ = synth_clip
    out = tmp_path / "out"
    first = extract(video, out, small_settings(), device="cpu", progress=False)
    again = extract(video, out, small_settings(), device="cpu", progress=False)
    assert again.nothing_to_do and not first.nothing_to_do
    (out / "faces" / "000003.png").unlink()  # a missing face: the output is not complete any more
    assert not extract(video, out, small_settings(), device="cpu", progress=False).nothing_to_do
    redo = extract(video, out, small_settings(size=48), device="cpu", progress=False)
    assert not redo.nothing_to_do
    assert cv2.imread(str(out / "faces" / "000000.png")).shape == (48, 48, 3)


def test_interrupted_run_resumes_where_it_stopped(synth_clip, tmp_path, small_settings, monkeypatch):
    video, renders = synth_clip
    full = extract(video, tmp_path / "full", small_settings(save_every=4), device="cpu", progress=False).alignments

    from faceswap.extract import detect

    calls = {"n": 0}
    real = detect.Detector.detect

    def flaky(self, frames):
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch (frames 8..11): as if the user pressed Ctrl-C
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(detect.Detector, "detect", flaky)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        extract(video, out, small_settings(save_every=4), device="cpu", progress=False)
    assert not (out / ALIGNMENTS).exists()
    partial = json.loads((out / PARTIAL).read_text())
    assert len(partial["frames"]) == 8 and partial["resume"]["smoother"] is not None
    monkeypatch.setattr(detect.Detector, "detect", real)
    res = extract(video, out, small_settings(save_every=4), device="cpu", progress=False)
    assert res.resumed_from == 8 and res.timings.frames == len(renders) - 8
    assert not (out / PARTIAL).exists()
    resumed = load_alignments(out / ALIGNMENTS)
    for a, b in zip(full.frames, resumed.frames):
        assert a.target == b.target and len(a.faces) == len(b.faces)
        fa, fb = full.target_face(a.index), resumed.target_face(b.index)
        # the smoother's state was saved, so the resumed run continues exactly (up to the file's rounding)
        np.testing.assert_allclose(fa.landmarks_smoothed, fb.landmarks_smoothed, atol=0.05)


def test_partial_from_other_settings_is_not_reused(synth_clip, tmp_path, small_settings, capsys):
    video, renders = synth_clip
    out = tmp_path / "out"
    extract(video, out, small_settings(), device="cpu", progress=False)
    data = json.loads((out / ALIGNMENTS).read_text())
    data["frames"] = data["frames"][:5]
    data["settings"]["target"] = "central"
    (out / PARTIAL).write_text(json.dumps(data))
    (out / ALIGNMENTS).unlink()
    res = extract(video, out, small_settings(), device="cpu", progress=False)
    assert res.resumed_from == 0 and "starting over" in capsys.readouterr().err


def test_out_is_a_file(synth_clip, tmp_path, small_settings):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        extract(synth_clip[0], tmp_path / "f", small_settings(), device="cpu", progress=False)


def test_reference_target_follows_the_person_in_the_photo(tmp_path, small_settings):
    from faceswap.video import write_image

    renders = synth_frames(6, seed=21, second_face=True)
    folder = write_images(tmp_path / "frames", [r.image for r in renders])
    # a photo of the smaller actor B, alone
    photo = synth_frames(1, seed=5, actor="B", width=320, height=240)[0].image
    write_image(tmp_path / "ref.png", photo)
    res = extract(folder, tmp_path / "out", small_settings(target="reference", reference=str(tmp_path / "ref.png")),
                  device="cpu", progress=False)
    for i, r in enumerate(renders):
        face = res.alignments.target_face(i)
        assert face is not None
        d_b = np.linalg.norm(face.landmarks - r.extra_landmarks[0], axis=1).mean()
        d_a = np.linalg.norm(face.landmarks - r.landmarks, axis=1).mean()
        assert d_b < d_a


def test_reference_without_a_face_is_a_user_error(tmp_path, small_settings, mixed_folder):
    from faceswap.video import write_image

    write_image(tmp_path / "blank.png", np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(UserError, match="no face found in the reference"):
        extract(mixed_folder, tmp_path / "out", small_settings(target="reference", reference=str(tmp_path / "blank.png")),
                device="cpu", progress=False)


def test_locator_alone_reproduces_the_stage(synth_clip, tmp_path, small_settings):
    """Convert locates faces on the fly with TargetLocator: it must agree with what extract wrote."""
    from faceswap.extract.pipeline import TargetLocator
    from faceswap.video import FrameSource

    video, renders = synth_clip
    settings = small_settings()
    al = extract(video, tmp_path / "out", settings, device="cpu", progress=False).alignments
    loc = TargetLocator.from_settings(settings, "cpu", fps=25.0)
    frames = list(FrameSource(video))
    dets = loc.detector.detect([f.image for f in frames])
    for f, d in zip(frames, dets):
        faces, target, smoothed = loc.locate(f.image, d)
        assert target == al.frame(f.index).target
        np.testing.assert_allclose(smoothed, al.target_face(f.index).landmarks_smoothed, atol=0.05)
    assert loc.locate(None, []) == ([], None, None)
