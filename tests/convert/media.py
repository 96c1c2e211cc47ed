"""Test inputs for convert: a real photo's face moved by known similarity transforms, its landmarks, videos with audio,
alignments files, and models (a tiny untrained autoencoder checkpoint, an identity stand-in)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

# The astronaut photo's 5 landmarks (MTCNN's order) as the detector reports them: test input, not a result.
ASTRONAUT_LANDMARKS = np.array([[203.3, 100.4], [246.2, 102.9], [224.3, 128.6], [202.4, 139.5], [244.5, 141.6]])
ASTRONAUT_FACE_CENTRE = (224.0, 120.0)


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def similarity(scale: float, angle_deg: float, centre, to) -> np.ndarray:
    """2x3: rotate by ``angle_deg`` and scale about ``centre``, then move ``centre`` to ``to``."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle_deg), float(scale))
    m[:, 2] += np.asarray(to, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
    return m


def moving_face(n: int, size=(256, 192), scale: float = 0.6, shift: float = 12.0, angle: float = 6.0,
                to=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` frames of the astronaut photo moved smoothly, and the true landmarks in each frame."""
    img = astronaut()
    w, h = size
    cx, cy = (w / 2, h / 2) if to is None else to
    frames, lms = [], []
    for t in range(n):
        ph = 2 * np.pi * t / max(n, 2)
        m = similarity(scale, angle * np.sin(ph), ASTRONAUT_FACE_CENTRE, (cx + shift * np.cos(ph), cy + 0.5 * shift * np.sin(ph)))
        frames.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        lms.append(ASTRONAUT_LANDMARKS @ m[:, :2].T + m[:, 2])
    return frames, lms


def write_video(path: Path, frames, fps: float = 25.0, audio_s: float | None = None) -> Path:
    """H.264 MP4 of ``frames``; with ``audio_s`` a 440 Hz sine track of that length muxed in (AAC)."""
    from faceswap.video import VideoWriter, ffmpeg_exe

    silent = path if audio_s is None else path.with_name(path.stem + ".silent.mp4")
    with VideoWriter(silent, fps, crf=12, preset="ultrafast") as w:
        for f in frames:
            w.write(f)
    if audio_s is None:
        return path
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration={audio_s}", "-c:v", "copy", "-c:a", "aac",
                    str(path)], check=True)
    silent.unlink()
    return path


def write_alignments(path: Path, source: Path, landmarks, size: int, kind: str = "video", fps: float = 25.0,
                     crop_size: int = 64, coverage: float = 0.75, names=None) -> Path:
    """An alignments.json for ``source`` with the given per-frame landmarks (None: no face)."""
    from faceswap.extract.align import alignment_matrix, template_points
    from faceswap.extract.alignments import Alignments, Face, FrameRecord, save_alignments

    frames = []
    for i, lm in enumerate(landmarks):
        name = names[i] if names else f"{i:06d}"
        if lm is None:
            frames.append(FrameRecord(i, name, [], None))
            continue
        lm = np.asarray(lm, dtype=np.float64)
        box = np.array([lm[:, 0].min() - 20, lm[:, 1].min() - 25, lm[:, 0].max() + 20, lm[:, 1].max() + 20])
        face = Face(box, 0.999, lm, lm, alignment_matrix(lm, crop_size, coverage))
        frames.append(FrameRecord(i, name, [face], 0))
    al = Alignments({"path": str(Path(source).resolve()), "kind": kind, "frames": len(frames), "width": size[0],
                     "height": size[1], "fps": fps},
                    {"size": crop_size, "coverage": coverage,
                     "template": template_points(crop_size, coverage).tolist()}, {}, frames)
    save_alignments(al, path)
    return path


def tiny_checkpoint(run_dir: Path, coverage: float = 0.75, crop_size: int = 64, seed: int = 0) -> Path:
    """An untrained tiny-preset autoencoder saved with the checkpoint API (crop geometry recorded)."""
    import torch

    from faceswap.config import CONF_DIR
    from faceswap.models import Autoencoder, save_checkpoint
    from omegaconf import OmegaConf

    args = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / "tiny.yaml"))
    args.pop("_target_", None)
    torch.manual_seed(seed)
    model = Autoencoder(args)
    save_checkpoint(run_dir / "checkpoints", 1, model, state={"crop": {"size": crop_size, "coverage": coverage}})
    return run_dir


class IdentityModel:
    """Stands in for a trained autoencoder in tests: returns its input face and a full mask (a perfect "swap" to itself)."""

    def __init__(self, resolution: int = 64):
        import torch

        from faceswap.models import AutoencoderConfig

        self.config = AutoencoderConfig(name="identity", resolution=resolution, encoder_channels=(8, 8),
                                        decoder_channels=(8,), bottleneck_channels=8, encoder_upscale=8)
        self.torch = torch

    def encode(self, x):
        return x

    def decode(self, z, identity):
        return z, self.torch.ones_like(z[:, :1])


def identity_checkpoint(resolution: int = 64, coverage: float = 0.75):
    """What ``load_checkpoint`` returns, for the identity stand-in (monkeypatch it in)."""
    from types import SimpleNamespace

    def load(path, device="cpu", weights="auto", **_):
        return SimpleNamespace(path=Path(str(path)), model=IdentityModel(resolution), step=0, weights="model",
                               state={"crop": {"size": resolution, "coverage": coverage}})

    return load
