"""A folder of unrelated photos: every photo's face is the target on its own (no tracking across photos)."""
import cv2
import numpy as np
import pytest
import skimage.data
from matplotlib import cbook
from PIL import Image

from faceswap.cli import main
from faceswap.extract.alignments import load_alignments


@pytest.mark.slow
def test_each_photo_gets_its_face(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a_astronaut.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "b_camera_gray.png"), skimage.data.camera())  # grayscale
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")))
    Image.fromarray(np.dstack([hopper, np.full(hopper.shape[:2], 255, np.uint8)])).save(photos / "c_hopper_rgba.png")
    out = tmp_path / "out"
    assert main(["extract", str(photos), f"out={out}", "progress=false"]) == 0
    al = load_alignments(out / "alignments.json")
    assert [rec.target for rec in al.frames] == [0, 0, 0]
    assert sorted(p.name for p in (out / "faces").iterdir()) == ["a_astronaut.png", "b_camera_gray.png", "c_hopper_rgba.png"]
