"""The alignments file: round trip, accessors, and one clear error per kind of damage."""
import copy
import json

import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.extract.align import alignment_matrix, template_points, transform_points
from faceswap.extract.alignments import Alignments, Face, FrameRecord, load_alignments, save_alignments

# an exact similarity image of the template: alignment maps it back onto the template exactly
LM = transform_points(template_points(64, 0.75), [[2.0, 0.3, 80], [-0.3, 2.0, 60]])


def _alignments(n=3):
    frames = []
    for i in range(n):
        if i == 1:
            frames.append(FrameRecord(i, f"{i:06d}", [], None))
            continue
        lm = LM + i
        faces = [Face(np.array([90.0, 80, 150, 160]) + i, 0.99, lm + 0.25, lm, alignment_matrix(lm, 64, 0.75)),
                 Face(np.array([300.0, 80, 340, 130]), 0.95, LM + 200, LM + 200, alignment_matrix(LM + 200, 64, 0.75))]
        frames.append(FrameRecord(i, f"{i:06d}", faces, 0))
    source = {"path": "/x/a.mp4", "kind": "video", "frames": n, "width": 640, "height": 480, "fps": 25.0}
    crop = {"size": 64, "coverage": 0.75, "template": template_points(64, 0.75).tolist()}
    return Alignments(source, crop, {"target": "largest"}, frames)


def test_round_trip_and_accessors(tmp_path):
    path = tmp_path / "alignments.json"
    save_alignments(_alignments(), path)
    al = load_alignments(path)
    assert len(al) == 3 and al.size == 64 and al.coverage == 0.75
    assert al.target_face(1) is None and al.landmarks_in_crop(1) is None
    face = al.target_face(2)
    np.testing.assert_allclose(face.landmarks, LM + 2.25, atol=1e-3)
    np.testing.assert_allclose(face.landmarks_smoothed, LM + 2, atol=1e-3)
    np.testing.assert_allclose(al.landmarks_in_crop(0), template_points(64, 0.75), atol=1e-3)
    assert al.summary() == {"frames": 3, "faces": 4, "targets": 2, "misses": 1, "errors": 0}
    data = json.loads(path.read_text())
    assert data["schema"] == "faceswap.alignments" and data["version"] == 1
    assert data["frames"][1] == {"index": 1, "name": "000001", "target": None, "faces": []}
    np.testing.assert_allclose(transform_points(face.landmarks_smoothed, face.matrix), template_points(64, 0.75), atol=1e-3)


def _broken(tmp_path, mutate):
    data = _alignments().to_dict()
    data = json.loads(json.dumps(data))
    mutate(data)
    path = tmp_path / "alignments.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(schema="something.else"), "schema"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d["frames"].pop(), "source.frames"),
    (lambda d: d["frames"][0]["faces"][0].update(landmarks=[[1, 2]] * 4), "frames[0].faces[0].landmarks"),
    (lambda d: d["frames"][0]["faces"][0].update(matrix=[[1, 0, 0]]), "matrix"),
    (lambda d: d["frames"][2].update(target=5), "target"),
    (lambda d: d["frames"][2].update(index=7), "index"),
    (lambda d: d["frames"][0]["faces"][0].update(score="high"), "score"),
    (lambda d: d["frames"][0]["faces"][0].pop("box"), "box"),
    (lambda d: d.update(crop={"size": 0, "coverage": 0.75}), "crop.size"),
    (lambda d: d.update(frames={}), "frames"),
])
def test_damage_is_a_user_error_naming_file_and_problem(tmp_path, mutate, needle):
    path = _broken(tmp_path, mutate)
    with pytest.raises(UserError) as exc:
        load_alignments(path)
    msg = str(exc.value)
    assert str(path) in msg and needle in msg and "\n" not in msg


def test_not_json_and_missing(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_alignments(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_alignments(tmp_path / "nope.json")


def test_partial_file_loads_when_allowed(tmp_path):
    path = _broken(tmp_path, lambda d: d["frames"].pop())
    from faceswap.extract.alignments import alignments_from_dict

    al = alignments_from_dict(json.loads(path.read_text()), complete=False)
    assert len(al) == 2


def test_error_field_round_trips(tmp_path):
    al = _alignments()
    al.frames[1] = FrameRecord(1, "000001", [], None, error="image x.png could not be decoded")
    path = tmp_path / "alignments.json"
    save_alignments(copy.deepcopy(al), path)
    assert load_alignments(path).frame(1).error == "image x.png could not be decoded"
