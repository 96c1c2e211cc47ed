"""The invisible watermark on single frames: payload coding, round trips, fidelity, resizing, false positives."""
import cv2
import numpy as np
import pytest
import skimage.data

from faceswap.provenance import WatermarkCodec, detect_watermark, embed_watermark, run_tag
from faceswap.provenance.watermark import TOOL_ID, conv_encode, crc16, viterbi_decode, whiten


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


@pytest.fixture(scope="module")
def codec():
    return WatermarkCodec()


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_crc16_known_answer():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value


def test_run_tag_is_a_stable_24_bit_hash():
    assert run_tag("run-1") == run_tag("run-1")
    assert run_tag("run-1") != run_tag("run-2")
    assert all(0 <= run_tag(f"r{i}") < 2**24 for i in range(100))
    assert len({run_tag(f"r{i}") for i in range(1000)}) == 1000


def test_whiten_removes_shading():
    yy, xx = np.mgrid[0:12, 0:16].astype(np.float32)
    assert np.abs(whiten(3 * xx + 2 * yy + 50)[2:-2, 2:-2]).max() < 0.05  # of values up to 100
    spike = np.zeros((12, 16), np.float32)
    spike[6, 8] = 10
    assert whiten(spike)[6, 8] > 8


def test_conv_code_impulse_response():
    # A single 1 walks through the K=7 register: the output pairs spell the generators 133, 171 (octal).
    out = conv_encode(np.array([1]))
    g1, g2 = out[0::2], out[1::2]
    assert int("".join(map(str, g1)), 2) == 0o133 and int("".join(map(str, g2)), 2) == 0o171
    assert len(conv_encode(np.zeros(48, np.int8))) == 108 and not conv_encode(np.zeros(48, np.int8)).any()


def test_viterbi_corrects_scattered_errors():
    rng = np.random.default_rng(2)
    for _ in range(20):
        word = rng.integers(0, 2, 48).astype(np.int8)
        soft = 1.0 - 2.0 * conv_encode(word)
        flip = rng.choice(soft.size, 4, replace=False)  # free distance 10: any 4 errors are correctable
        soft[flip] *= -1
        assert np.array_equal(viterbi_decode(soft, 48), word)


@pytest.mark.parametrize("payload", [0, 1, 0xABCDEF, 2**24 - 1, b"\x01\x02\x03", "run-2024-06-01"])
def test_encode_decode_round_trip(codec, payload):
    bits = codec.encode(payload)
    assert bits.shape == (codec.coded_bits,) == (108,)
    run, word = codec.decode(1.0 - 2.0 * bits)
    assert run == codec.run_value(payload)
    assert np.array_equal(word, codec.word(payload)) and word[:8].tolist() == [1, 1, 1, 1, 0, 1, 0, 1]  # 0xF5


def test_decoder_corrects_noisy_soft_bits(codec):
    rng = np.random.default_rng(5)
    clean = 1.0 - 2.0 * codec.encode(0x123456)
    noisy = 0.5 * clean + rng.normal(0, 0.5, clean.size)  # ~16% of the coded bits flipped
    assert ((noisy < 0) != (clean < 0)).sum() >= 10
    assert codec.decode(noisy)[0] == 0x123456


def test_random_words_almost_never_decode(codec):
    # A random word passes the 8-bit tool tag and the CRC-16 with probability 2**-24 (~6e-8).
    rng = np.random.default_rng(1)
    hits = sum(codec.decode(rng.standard_normal(codec.coded_bits))[0] is not None for _ in range(3000))
    assert hits == 0


def test_round_trip_on_a_photo(codec, astronaut):
    marked = codec.embed(astronaut, "run-7")
    assert marked.shape == astronaut.shape and marked.dtype == np.uint8
    assert psnr(marked, astronaut) >= 38.0
    res = codec.detect(marked)
    assert res.present and res.payload == run_tag("run-7") and res.tool_id == TOOL_ID
    assert res.bit_accuracy == 1.0 and res.raw_bit_accuracy == 1.0 and res.score > 0.9
    assert not codec.detect(astronaut).present


def test_mark_changes_luma_not_chroma(codec, astronaut):
    marked = codec.embed(astronaut, 5).astype(np.int16)
    delta = marked - astronaut
    unclipped = (marked > 0).all(axis=2) & (marked < 255).all(axis=2)
    # The same offset on R, G and B (up to rounding): chroma (differences between channels) stays put.
    spread = delta[unclipped].max(axis=1) - delta[unclipped].min(axis=1)
    assert spread.max() <= 1
    assert np.abs(delta).max() <= 16


def test_flat_frames_carry_the_mark(codec):
    grey = np.full((240, 320, 3), 128, np.uint8)
    with_object = grey.copy()
    cv2.circle(with_object, (160, 120), 25, (200, 60, 60), -1)
    for frame in (grey, with_object):
        marked = codec.embed(frame, 0x0F0F0F)
        assert psnr(marked, frame) >= 37.0
        assert np.abs(marked.astype(int) - frame).max() <= 12
        res = codec.detect(marked)
        assert res.present and res.payload == 0x0F0F0F


@pytest.mark.parametrize("size", [(256, 256), (200, 150), (1024, 1024)])
def test_survives_resizing(codec, astronaut, size):
    marked = codec.embed(astronaut, 0x5A5A5A)
    res = codec.detect(cv2.resize(marked, size, interpolation=cv2.INTER_AREA))
    assert res.present and res.payload == 0x5A5A5A


def test_survives_jpeg(codec, astronaut):
    marked = codec.embed(astronaut, 0x777777)
    ok, buf = cv2.imencode(".jpg", marked[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    res = codec.detect(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy())
    assert res.present and res.payload == 0x777777


def test_unmarked_frames_under_many_keys_are_not_present(astronaut):
    rng = np.random.default_rng(3)
    frames = [astronaut, skimage.data.chelsea(), np.full((240, 320, 3), 90, np.uint8),
              rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)]
    keys = rng.integers(0, 2**31, 50)
    assert not any(WatermarkCodec(int(k)).detect(f).present for k in keys for f in frames)


def test_another_key_does_not_read_the_mark(codec, astronaut):
    marked = codec.embed(astronaut, 0x111111)
    assert not WatermarkCodec(key=codec.key + 1).detect(marked).present
    assert WatermarkCodec(key=codec.key).detect(marked).payload == 0x111111


def test_region_box_and_mask(codec, astronaut):
    box = (100, 40, 420, 300)
    marked = codec.embed(astronaut, 0x2468AC, region=box)
    changed = np.any(marked != astronaut, axis=2)
    assert changed[40:300, 100:420].mean() > 0.3 and not changed[:40].any() and not changed[:, 420:].any()
    assert codec.detect(marked, region=box).payload == 0x2468AC

    mask = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.circle(mask, (256, 200), 150, 255, -1)
    marked = codec.embed(astronaut, 0x2468AC, region=mask)
    assert not np.any(marked != astronaut, axis=2)[mask == 0].any()
    assert codec.detect(marked, region=mask).payload == 0x2468AC


def test_lower_strength_changes_less(codec, astronaut):
    full = psnr(codec.embed(astronaut, 9), astronaut)
    half = psnr(codec.embed(astronaut, 9, strength=0.5), astronaut)
    assert half > full + 2


def test_module_level_functions(astronaut):
    res = detect_watermark(embed_watermark(astronaut, 42))
    assert res.present and res.payload == 42
    assert set(res.to_dict()) >= {"present", "payload", "payload_hex", "bit_accuracy", "score", "frames"}


def test_expected_payload_gives_bit_accuracy_without_a_decode(codec):
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    res = codec.detect(frame, expected=0x000001)
    assert not res.present and 0.2 < res.bit_accuracy < 0.8 and 0.2 < res.raw_bit_accuracy < 0.8


def test_bad_inputs(codec, astronaut):
    with pytest.raises(ValueError, match="fit"):
        codec.embed(astronaut, 2**24)
    with pytest.raises(ValueError, match="int, bytes or str"):
        codec.embed(astronaut, 1.5)
    with pytest.raises(ValueError, match="at least"):
        codec.embed(astronaut[:20, :20], 1)
    with pytest.raises(ValueError, match="RGB uint8"):
        codec.embed(astronaut[..., 0], 1)
    with pytest.raises(ValueError, match="strength"):
        codec.embed(astronaut, 1, strength=0)
    with pytest.raises(ValueError, match="key"):
        WatermarkCodec(key=-1)
    assert not codec.detect(astronaut[:20, :20].copy()).present  # too small to read: a plain "no"


def test_a_longer_payload_round_trips(astronaut):
    codec = WatermarkCodec(payload_bits=48)  # 40-bit run tag, 140 coded bits
    assert codec.coded_bits == 140
    res = codec.detect(codec.embed(astronaut, 2**40 - 3))
    assert res.present and res.payload == 2**40 - 3
