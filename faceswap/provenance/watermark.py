"""Invisible watermark: a keyed, CRC-checked payload in the luma plane on a frame-normalised grid of cells.

How it works (spread-transform dither modulation, Chen & Wornell 2001; spreading after Cox et al. 1997):

* The frame's luma is area-averaged onto a fixed ``GRID`` of cells (16 x 20) defined in
  frame-normalised coordinates, so a frame resized to any size maps to the same cells.
  Cells are 16x15 px at 320x240 and 64x45 px at 1280x720: coarse enough for a half-size
  resize and H.264's quantiser to keep them.
* The cell grid is whitened (each cell minus a Gaussian mean of its neighbours) so the
  picture's smooth shading cancels out.
* Each coded bit owns 2-3 cells scattered over the frame by the key, each with a key-chosen
  +/-1 chip. The bit's *projection* is the chip-weighted mean of its whitened cells.
  Embedding moves each projection onto one of two interleaved lattices (step ``step`` grey
  levels, key-dithered): lattice 0 for bit 0, shifted by step/2 for bit 1.
  Because the move is measured from the frame's own projection, the picture never fights the
  mark (no host interference), which is what lets a mark of a few grey levels survive.
* The move is spread over the bit's cells as a smooth (bilinearly interpolated) luma offset,
  weighted by a texture mask: textured areas take up to 1/MASK_FLOOR (2) times more than
  flat ones. Flat areas still carry a low, smooth offset (no pixel-level dither): without it a
  frame that is mostly flat background, like the synthetic actors', could not be marked.
* The same offset is added to R, G and B, so luma moves and chroma does not (H.264's 4:2:0
  halves chroma; luma keeps full resolution).
* Detection is blind (no original needed): soft bit = cos(2*pi*(projection - dither) / step),
  +1 on lattice 0 and -1 on lattice 1. Video detection averages soft bits over frames
  before deciding, which averages out the coding noise of individual frames.
* The word (8-bit tool/format tag + run tag + CRC-16) is protected by the rate-1/2, K=7
  convolutional code (generators 133, 171 octal; free distance 10) and scrambled by the key;
  a soft-decision Viterbi decoder reads it back, correcting the bits that coding noise
  flips. A word counts only if its tag and CRC both check (24 check bits): an unmarked frame
  decodes to a valid word with probability 2**-24 ~ 6e-8.

The key is a seed, not a secret: this is an open toolkit, and the mark is for honest labelling
(anyone with the code can detect it, and a determined party can remove it).

Limits (measured with scripts/bench_watermark.py): it does not survive cropping or shifting
(the grid has no geometric sync), nor a contrast change of ~10% (the lattice is in grey
levels); on panning footage at 320x240, H.264 drags the still mark along with the picture, so
single frames often fail and only the average over frames decodes.
"""
from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Union

import cv2
import numpy as np

GRID = (16, 20)  # rows, cols of mark cells over the (normalised) frame or region
TOOL_ID = 0xF5  # 8-bit tag: "faceswap watermark, format 1"
DEFAULT_KEY = 0x5F5A0001
DEFAULT_STEP = 6.0  # lattice step of a bit's projection, in grey levels of whitened luma
DEFAULT_PAYLOAD_BITS = 32  # 8-bit tool tag + 24-bit run tag
CRC_BITS = 16
CONV_K = 7  # constraint length of the convolutional code
CONV_GENERATORS = (0o133, 0o171)
MASK_FLOOR = 0.5  # share of the offset flat areas carry, relative to textured ones
TEXTURE_REF = 8.0  # local luma std (grey levels) at which an area counts as fully textured
EMBED_ITERS = 3

Payload = Union[int, bytes, str]
Region = Union[None, tuple, list, np.ndarray]


def luma(frame_rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (what H.264 codes at full resolution) as float32 HxW."""
    return cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def whiten(cells: np.ndarray) -> np.ndarray:
    """Each cell minus a Gaussian (sigma 1 cell) mean of its neighbourhood: keeps cell-scale detail, drops shading."""
    return cells - cv2.GaussianBlur(cells, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)


def texture_mask(y: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Embedding weight in [MASK_FLOOR, 1] on a (4*rows, 4*cols) grid, from the local std of luma."""
    gh, gw = grid
    small = cv2.resize(y, (4 * gw, 4 * gh), interpolation=cv2.INTER_AREA)
    mean = cv2.GaussianBlur(small, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    sq = cv2.GaussianBlur(small * small, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return np.clip(std / TEXTURE_REF, MASK_FLOOR, 1.0).astype(np.float32)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(data, 0xFFFF)


def run_tag(run_id: str, bits: int = DEFAULT_PAYLOAD_BITS - 8) -> int:
    """The run id hashed to ``bits`` bits: what the watermark carries to name a run."""
    digest = hashlib.blake2b(str(run_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - bits)


def _bits_of(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.int8)


def _int_of(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits), 2) if len(bits) else 0


def _trellis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outputs[state, bit, g], predecessors[state, 2], input bit into state) of the convolutional code.

    A state is the last K-1 input bits, newest in the top bit.
    """
    n_states = 1 << (CONV_K - 1)
    out = np.zeros((n_states, 2, len(CONV_GENERATORS)), np.int8)
    for state in range(n_states):
        for bit in (0, 1):
            reg = (bit << (CONV_K - 1)) | state
            out[state, bit] = [bin(reg & g).count("1") & 1 for g in CONV_GENERATORS]
    states = np.arange(n_states)
    low = (1 << (CONV_K - 2)) - 1
    pred = np.stack([((states & low) << 1) | x for x in (0, 1)], axis=1)
    return out, pred, states >> (CONV_K - 2)


_OUT, _PRED, _INPUT = _trellis()


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2 convolutional code, terminated with K-1 zero bits: 2 * (len(bits) + K - 1) coded bits."""
    state, out = 0, []
    for bit in list(np.asarray(bits, dtype=np.int64)) + [0] * (CONV_K - 1):
        out.extend(_OUT[state, bit])
        state = ((int(bit) << (CONV_K - 1)) | state) >> 1
    return np.array(out, dtype=np.int8)


def viterbi_decode(soft: np.ndarray, n_bits: int) -> np.ndarray:
    """Maximum-likelihood input bits for soft coded values (+1 means 0, -1 means 1, magnitude = reliability)."""
    n_g = len(CONV_GENERATORS)
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, n_g)
    n_states = _PRED.shape[0]
    states = np.arange(n_states)
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0  # the encoder starts in state 0
    sign = 1.0 - 2.0 * _OUT  # (state, bit, g)
    choice = np.zeros((soft.shape[0], n_states), np.int8)
    for t, received in enumerate(soft):
        branch = (sign * received).sum(axis=-1)  # correlation of each (state, bit) output with what was read
        cand = metric[_PRED] + branch[_PRED, _INPUT[:, None]]
        choice[t] = np.argmax(cand, axis=1)
        metric = cand[states, choice[t]]
    state, bits = 0, []  # the tail drives the encoder back to state 0
    for t in range(soft.shape[0] - 1, -1, -1):
        bits.append(_INPUT[state])
        state = _PRED[state, choice[t, state]]
    return np.array(bits[::-1][:n_bits], dtype=np.int8)


@dataclass
class WatermarkResult:
    """What detection found.

    ``present``: a word decoded with a valid tool tag and CRC. ``payload``: the run tag (int) or
    None. ``bit_accuracy``: share of the word's bits (tool tag, run tag, CRC) that each frame
    decodes right on its own, averaged over frames; ``raw_bit_accuracy``: the same for the coded
    bits before error correction. Both are measured against the decoded word, or against
    ``expected`` when nothing decoded and it was given; None without a reference. ``score``:
    mean over coded bits of soft bit x reference sign, in [-1, 1] (1: every projection sits on
    its lattice point). ``corrected``: coded bits of the frame-averaged word that the decoder
    overruled. ``frames``: frames that went into the decision.
    """

    present: bool
    payload: int | None
    tool_id: int | None
    bit_accuracy: float | None
    raw_bit_accuracy: float | None
    score: float
    corrected: int | None
    frames: int
    soft: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(float(v), 4)

        return {
            "present": self.present,
            "tool_id": self.tool_id,
            "payload": self.payload,
            "payload_hex": None if self.payload is None else f"{self.payload:06x}",
            "bit_accuracy": r(self.bit_accuracy),
            "raw_bit_accuracy": r(self.raw_bit_accuracy),
            "score": r(self.score),
            "corrected_bits": self.corrected,
            "frames": self.frames,
        }


class WatermarkCodec:
    """A keyed watermark: ``payload_bits`` = 8-bit tool tag + (payload_bits - 8)-bit run tag.

    Default: 32 payload bits (a 24-bit run tag: one in 16.7 M runs share a tag) + CRC-16 = a
    48-bit word, 108 coded bits after the convolutional code, 2-3 cells each on the 16 x 20 grid.
    Embedder and detector must agree on ``key``, ``payload_bits``, ``step`` and ``grid``.
    """

    def __init__(self, key: int = DEFAULT_KEY, payload_bits: int = DEFAULT_PAYLOAD_BITS,
                 step: float = DEFAULT_STEP, grid: tuple[int, int] = GRID):
        if not isinstance(key, (int, np.integer)) or isinstance(key, bool) or key < 0:
            raise ValueError(f"watermark key must be a non-negative integer, got {key!r}")
        if payload_bits % 8 or not 16 <= payload_bits <= 48:
            raise ValueError(f"payload_bits must be a multiple of 8 in [16, 48], got {payload_bits}")
        if not step > 0:
            raise ValueError(f"step must be positive, got {step}")
        self.key, self.payload_bits, self.step = int(key), int(payload_bits), float(step)
        self.grid = (int(grid[0]), int(grid[1]))
        self.run_bits = self.payload_bits - 8
        self.word_bits = self.payload_bits + CRC_BITS
        self.coded_bits = len(CONV_GENERATORS) * (self.word_bits + CONV_K - 1)
        cells = self.grid[0] * self.grid[1]
        if cells < 2 * self.coded_bits:
            raise ValueError(f"grid {self.grid} has too few cells for {self.coded_bits} coded bits (need 2 per bit)")
        rng = np.random.default_rng(np.random.SeedSequence([self.key, self.payload_bits, *self.grid]))
        # Scatter each bit's cells over the whole frame so a local edit or occlusion hits many bits a
        # little (which the code repairs) rather than a few bits entirely.
        self._bit = np.empty(cells, dtype=np.int64)
        self._bit[rng.permutation(cells)] = np.arange(cells) % self.coded_bits
        self._chip = np.where(rng.permutation(cells) < cells // 2, -1.0, 1.0).astype(np.float32)
        self._dither = rng.random(self.coded_bits) * self.step
        self._scramble = rng.integers(0, 2, self.coded_bits).astype(np.int8)

    # ---- payload coding -------------------------------------------------------------------

    def run_value(self, payload: Payload) -> int:
        """The run tag an embed call carries: an int or bytes as given, a str hashed with ``run_tag``."""
        if isinstance(payload, str):
            return run_tag(payload, self.run_bits)
        if isinstance(payload, (bytes, bytearray)):
            if len(payload) * 8 > self.run_bits:
                raise ValueError(f"payload of {len(payload)} bytes does not fit the {self.run_bits}-bit run tag")
            return int.from_bytes(payload, "big")
        if isinstance(payload, (int, np.integer)) and not isinstance(payload, bool):
            if not 0 <= int(payload) < 2 ** self.run_bits:
                raise ValueError(f"payload {payload} does not fit the {self.run_bits}-bit run tag")
            return int(payload)
        raise ValueError(f"payload must be int, bytes or str, got {type(payload).__name__}")

    def word(self, payload: Payload) -> np.ndarray:
        """The word before channel coding (0/1, ``word_bits`` long): tool tag, run tag, CRC-16."""
        value = (TOOL_ID << self.run_bits) | self.run_value(payload)
        crc = crc16(value.to_bytes(self.payload_bits // 8, "big"))
        return np.concatenate([_bits_of(value, self.payload_bits), _bits_of(crc, CRC_BITS)])

    def encode(self, payload: Payload) -> np.ndarray:
        """Coded bits (0/1, ``coded_bits`` long): the word, convolutionally coded, scrambled by the key."""
        return conv_encode(self.word(payload)) ^ self._scramble

    def _check(self, word: np.ndarray) -> int | None:
        value = _int_of(word[: self.payload_bits])
        if value >> self.run_bits != TOOL_ID:
            return None
        if crc16(value.to_bytes(self.payload_bits // 8, "big")) != _int_of(word[self.payload_bits:]):
            return None
        return value & (2 ** self.run_bits - 1)

    def decode_word(self, soft: np.ndarray) -> np.ndarray:
        """The most likely word for soft coded bits (+1 means 0), whether or not it checks."""
        return viterbi_decode(np.asarray(soft, dtype=np.float64) * (1.0 - 2.0 * self._scramble), self.word_bits)

    def decode(self, soft: np.ndarray) -> tuple[int | None, np.ndarray]:
        """(run tag or None when the tag or CRC fails, decoded word) for one soft word."""
        word = self.decode_word(soft)
        return self._check(word), word

    # ---- the signal -----------------------------------------------------------------------

    def _cells(self, weights: np.ndarray | None) -> np.ndarray:
        if weights is None:
            return np.ones(self._bit.size, dtype=np.float32)
        gh, gw = self.grid
        return cv2.resize(weights, (gw, gh), interpolation=cv2.INTER_AREA).ravel()

    def _project(self, y: np.ndarray, cover: np.ndarray) -> np.ndarray:
        gh, gw = self.grid
        cells = cv2.resize(y, (gw, gh), interpolation=cv2.INTER_AREA)
        w = whiten(cells).ravel() * self._chip * cover
        norm = np.bincount(self._bit, cover, self.coded_bits)
        return np.bincount(self._bit, w, self.coded_bits) / np.maximum(norm, 1e-6)

    def soft_bits(self, frame_rgb: np.ndarray, region: Region = None) -> np.ndarray:
        """Per-bit soft values in [-1, 1] (+1: bit 0) read from one frame; zeros where the frame is too small."""
        _check_frame(frame_rgb)
        x1, y1, x2, y2, weights = _region(region, frame_rgb.shape[:2])
        if not self._fits(y2 - y1, x2 - x1):
            return np.zeros(self.coded_bits)
        y = luma(frame_rgb[y1:y2, x1:x2])
        cover = self._cells(weights)
        p = self._project(y, cover)
        soft = np.cos(2 * np.pi * (p - self._dither) / self.step)
        return np.where(np.bincount(self._bit, cover, self.coded_bits) > 0, soft, 0.0)

    def _fits(self, h: int, w: int) -> bool:
        return h >= 2 * self.grid[0] and w >= 2 * self.grid[1]

    def embed(self, frame_rgb: np.ndarray, payload: Payload, region: Region = None,
              strength: float = 1.0) -> np.ndarray:
        """Return a marked copy of ``frame_rgb``.

        ``region``: None (whole frame), a box (x1, y1, x2, y2) or an HxW mask (only pixels where it
        is > 0 change; detection must be given the same region). ``strength`` in (0, 1]: the share
        of the way each projection moves to its lattice point; 1 is full robustness, lower values
        trade robustness for fidelity (the detector does not need to know it).
        """
        bits = self.encode(payload)
        _check_frame(frame_rgb)
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        x1, y1, x2, y2, weights = _region(region, frame_rgb.shape[:2])
        if not self._fits(y2 - y1, x2 - x1):
            raise ValueError(f"the watermark needs a region of at least {2 * self.grid[1]}x{2 * self.grid[0]} px, "
                             f"got {x2 - x1}x{y2 - y1}")
        out = frame_rgb.copy()
        out[y1:y2, x1:x2] = self._embed_bits(frame_rgb[y1:y2, x1:x2], bits, weights, strength)
        return out

    def _embed_bits(self, rgb: np.ndarray, bits: np.ndarray, weights: np.ndarray | None,
                    strength: float) -> np.ndarray:
        h, w = rgb.shape[:2]
        gh, gw = self.grid
        y = luma(rgb)
        mask = cv2.resize(texture_mask(y, self.grid), (w, h), interpolation=cv2.INTER_LINEAR)
        if weights is not None:
            mask = mask * weights
        cover = self._cells(weights)
        p0 = self._project(y, cover)
        offset = self._dither + bits * (self.step / 2)
        target = offset + np.round((p0 - offset) / self.step) * self.step
        target = p0 + strength * (target - p0)

        def field(amp: np.ndarray) -> np.ndarray:
            cells = (self._chip * amp[self._bit]).reshape(gh, gw).astype(np.float32)
            return cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR) * mask

        # The response of each projection to a unit amplitude (0.1-0.6: whitening, interpolation,
        # the mask and the neighbouring cells of other bits all take a share); measuring beats modelling.
        gain = np.maximum(self._project(field(np.ones(self.coded_bits)), cover), 0.05)
        amp = (target - p0) / gain
        limit = 4.0 * self.step  # caps the offset where clipping at 0 or 255 leaves a projection short
        base = rgb.astype(np.float32)
        out = rgb
        # Re-measure after rounding and clipping to 0..255 and correct: a few rounds land every
        # projection on its lattice point even where the picture saturates.
        for _ in range(EMBED_ITERS):
            amp = np.clip(amp, -limit, limit)
            out = np.clip(np.rint(base + field(amp)[..., None]), 0, 255).astype(np.uint8)
            amp = amp + (target - self._project(luma(out), cover)) / gain
        return out

    # ---- detection ------------------------------------------------------------------------

    def detect(self, frame_rgb: np.ndarray, region: Region = None, expected: Payload | None = None) -> WatermarkResult:
        """Blind detection on one frame (see ``decide`` for several frames)."""
        return self.decide(self.soft_bits(frame_rgb, region)[None], expected)

    def decide(self, soft: np.ndarray, expected: Payload | None = None) -> WatermarkResult:
        """Decide from soft bits of one or more frames (F x coded_bits): average over frames, then decode."""
        soft = np.atleast_2d(np.asarray(soft, dtype=np.float64))
        if soft.shape[1] != self.coded_bits:
            raise ValueError(f"soft bits must have {self.coded_bits} columns, got {soft.shape}")
        mean = soft.mean(axis=0)
        run, word = self.decode(mean)
        ref = word if run is not None else (self.word(expected) if expected is not None else None)
        accuracy = raw = score = corrected = None
        if ref is not None:
            coded = conv_encode(ref) ^ self._scramble
            raw = float(((soft < 0) == (coded == 1)).mean())
            accuracy = float(np.mean([(self.decode_word(s) == ref).mean() for s in soft]))
            score = float((mean * (1.0 - 2.0 * coded)).mean())
            corrected = int(((mean < 0) != (coded == 1)).sum()) if run is not None else None
        return WatermarkResult(
            present=run is not None, payload=run, tool_id=TOOL_ID if run is not None else None,
            bit_accuracy=accuracy, raw_bit_accuracy=raw, score=0.0 if score is None else score,
            corrected=corrected, frames=soft.shape[0], soft=mean,
        )


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {getattr(frame, 'dtype', type(frame))} "
                         f"{getattr(frame, 'shape', '')}")


def _region(region: Region, shape: tuple[int, int]) -> tuple[int, int, int, int, np.ndarray | None]:
    """(x1, y1, x2, y2, weights) for None, a box or a mask; weights are the mask's [0, 1] values in the box."""
    h, w = shape
    if region is None:
        return 0, 0, w, h, None
    arr = np.asarray(region)
    if arr.ndim == 2:
        if arr.shape != (h, w):
            raise ValueError(f"region mask must be {h}x{w} like the frame, got {arr.shape}")
        weights = arr.astype(np.float32)
        if arr.dtype == np.uint8:
            weights /= 255.0
        weights = np.clip(weights, 0.0, 1.0)
        ys, xs = np.nonzero(weights > 0)
        if ys.size == 0:
            raise ValueError("region mask is empty")
        y1, y2, x1, x2 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        return x1, y1, x2, y2, np.ascontiguousarray(weights[y1:y2, x1:x2])
    if arr.shape != (4,):
        raise ValueError(f"region must be None, a box (x1, y1, x2, y2) or an HxW mask, got shape {arr.shape}")
    x1, y1, x2, y2 = (int(round(float(v))) for v in arr)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"region box {tuple(region)} is empty inside a {w}x{h} frame")
    return x1, y1, x2, y2, None


_DEFAULT: dict[tuple, WatermarkCodec] = {}


def default_codec(key: int = DEFAULT_KEY, payload_bits: int = DEFAULT_PAYLOAD_BITS) -> WatermarkCodec:
    """A cached codec (building one draws the key's patterns; reuse it per frame)."""
    k = (int(key), int(payload_bits))
    if k not in _DEFAULT:
        _DEFAULT[k] = WatermarkCodec(*k)
    return _DEFAULT[k]


def embed_watermark(frame_rgb: np.ndarray, payload: Payload, region: Region = None, strength: float = 1.0,
                    key: int = DEFAULT_KEY) -> np.ndarray:
    """Mark one frame with the default codec (see ``WatermarkCodec.embed``)."""
    return default_codec(key).embed(frame_rgb, payload, region, strength)


def detect_watermark(frame_rgb: np.ndarray, region: Region = None, key: int = DEFAULT_KEY,
                     expected: Payload | None = None) -> WatermarkResult:
    """Detect the mark in one frame with the default codec (see ``WatermarkCodec.detect``)."""
    return default_codec(key).detect(frame_rgb, region, expected)
