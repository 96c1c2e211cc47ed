"""The real detector on the synthetic actors: MTCNN finds their faces, puts its landmarks near the truth, and
finds nothing when the face is turned away or gone."""
import numpy as np
import pytest

from faceswap.synth import BUILTIN_ACTORS, Performance, random_actor, random_performance, render
from faceswap.synth.bench import match
from faceswap.synth.dataset import degrade

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


def _detect(mtcnn, images):
    out = []
    images = list(images)
    for i in range(0, len(images), 8):  # small batches: big ones only cost memory on a CPU
        boxes, probs, points = mtcnn.detect(images[i:i + 8], landmarks=True)
        out += list(zip(boxes, probs, points))
    return out


def _rate_and_error(mtcnn, actor, perfs, size=(640, 480)):
    renders = [render(actor, p, *size) for p in perfs]
    hits, errs = 0, []
    for r, (b, p, pt) in zip(renders, _detect(mtcnn, [r.image for r in renders])):
        iod = np.linalg.norm(r.landmarks[1] - r.landmarks[0])
        m = match(b, p, pt, r.landmarks, 0.5 * iod)
        if m is not None and m[0] > 0.9:
            hits += 1
            errs.append(np.linalg.norm(m[1] - r.landmarks, axis=1).mean() / iod)
    return hits / len(perfs), float(np.mean(errs))


@pytest.mark.parametrize("name,frames,seed", [("A", 50, 101), ("B", 50, 202), ("C", 20, 303), ("D", 20, 404),
                                              ("E", 20, 505), ("random:9", 20, 606)])
def test_mtcnn_detects_the_actors(mtcnn, name, frames, seed):
    actor = BUILTIN_ACTORS.get(name) or random_actor(int(name.split(":")[1]))
    perfs = random_performance(frames * 4, seed)[::4]  # spread over the take
    rate, err = _rate_and_error(mtcnn, actor, perfs)
    assert rate >= (0.98 if frames >= 50 else 0.95), (name, rate)  # >= 49 of 50, >= 19 of 20
    # MTCNN's landmarks sit near the true ones (mean error as a fraction of the eye distance)
    assert err < 0.12, (name, err)


def test_mtcnn_finds_nothing_when_the_face_is_away(mtcnn):
    images = []
    for app in BUILTIN_ACTORS.values():
        for p in (Performance(yaw=180), Performance(yaw=160, pitch=8), Performance(yaw=-170, roll=5), Performance(x=-1.5)):
            r = render(app, p)
            assert not r.face_visible
            images.append(r.image)
    for b, p, _ in _detect(mtcnn, images):
        assert b is None or max(p) < 0.9, p


def test_mtcnn_sees_the_second_face(mtcnn):
    c = BUILTIN_ACTORS["C"]
    r = render(BUILTIN_ACTORS["A"], Performance(x=0.42, yaw=-10), extra=[(c, Performance(x=0.87, y=0.3, scale=0.28))])
    (b, p, pt), = _detect(mtcnn, [r.image])
    assert match(b, p, pt, r.landmarks, 20) is not None
    assert match(b, p, pt, r.extra_landmarks[0], 12) is not None


def test_mtcnn_still_detects_through_noise_and_blur(mtcnn):
    perfs = random_performance(40, 77)[::4]
    rng = np.random.default_rng(0)
    renders = [render(BUILTIN_ACTORS["B"], p) for p in perfs]
    images = [degrade(r.image, 8.0, 1.5, rng) for r in renders]
    found = sum(match(b, p, pt, r.landmarks, 30) is not None for r, (b, p, pt) in zip(renders, _detect(mtcnn, images)))
    assert found >= 9
