"""`faceswap verify`: read a video, an image or an image folder and report its watermark, C2PA manifest, provenance tags and a verdict.

Exit status follows grep: 0 when a mark is found, 1 when none is, 2 on bad input.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import UserError
from faceswap.provenance.content_credentials import read_manifest, summarise_states, trust_anchors
from faceswap.provenance.metadata import parse_provenance, unescape_tags
from faceswap.provenance.watermark import DEFAULT_KEY, TOOL_ID, WatermarkCodec, default_codec
from faceswap.video import IMAGE_EXTS, FrameSource, read_container_metadata, read_image


def _frames(path: Path, max_frames: int):
    """(kind, total frames, iterator of (name, image or None)) for a video, an image or an image folder."""
    if not path.exists():
        raise UserError(f"input {path} does not exist; give a video, an image or a folder of images")
    if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
        if path.stat().st_size == 0:
            raise UserError(f"image {path} is empty (0 bytes); give a valid image")
        image = read_image(path)
        return "image", 1, iter([(path.name, image)])
    source = FrameSource(path)
    kind = "video" if source.is_video else "images"
    total = min(len(source), max_frames)
    return kind, total, ((f.name, f.image) for f in source.iter_range(0, total))


def verify_file(path: str | Path, key: int = DEFAULT_KEY, max_frames: int = 150, progress: bool = False,
                c2pa: bool = True, trust: Any = "local", keys: Any = "auto") -> dict:
    """Check a file for the watermark (soft bits averaged over up to ``max_frames`` frames), a C2PA manifest and tags.

    ``trust``: the C2PA trust anchors (``local``: this machine's faceswap CA, ``none``, PEM files of CA
    certificates); ``keys``: where the local chain lives. Returns a JSON-ready dict: ``input``, ``kind``,
    ``frames_checked``, ``size``, ``watermark`` (present, tool_id, payload / payload_hex = run tag,
    bit_accuracy, score, frames_decoded, ...), ``c2pa`` (state: absent, untrusted, trusted, invalid,
    unsupported; for a folder also partial; signer, actions, facts, failures), ``metadata`` (tags found
    and what they say), ``found`` (which marks were found), ``marked`` and ``verdict`` (one line).
    """
    from tqdm import tqdm

    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    path = Path(path)
    anchors = trust_anchors(trust, keys) if c2pa else ("", [])
    codec = default_codec(key) if key == DEFAULT_KEY else WatermarkCodec(key)
    kind, total, frames = _frames(path, max_frames)
    soft, decoded, unreadable, too_small, size, names = [], [], [], 0, None, []
    for name, image in tqdm(frames, total=total, desc="verify", unit="frame", disable=not progress):
        names.append(name)
        if image is None:
            unreadable.append(name)
            continue
        size = size or [int(image.shape[1]), int(image.shape[0])]
        s = codec.soft_bits(image)
        if not np.any(s):
            too_small += 1
            continue
        soft.append(s)
        decoded.append(codec.decode(s)[0])  # each frame alone, for the report; the verdict averages them
    if not soft and not unreadable and too_small == 0:
        raise UserError(f"{path} holds no frames to check; give a video, an image or a folder of images")

    if soft:
        result, decision = codec.decide(np.array(soft)), "average"
        found = Counter(p for p in decoded if p is not None)
        if not result.present and found and found.most_common(1)[0][1] >= 2:
            # Only some frames were marked (a converter marks only swapped frames): unmarked ones
            # dilute the average, but two frames decoding the same valid word alone are ample
            # evidence (each does so by chance with probability 2**-24).
            payload = found.most_common(1)[0][0]
            result, decision = codec.decide(np.array(soft), expected=payload), "frames"
            result.present, result.payload, result.tool_id = True, payload, TOOL_ID
        watermark = result.to_dict()
        watermark["decision"] = decision
        watermark["frames_decoded"] = int(found[result.payload]) if result.present else int(sum(found.values()))
        watermark["checked"] = True
    else:
        watermark = {"present": False, "checked": False, "frames": 0,
                     "reason": "frames too small to carry the mark" if too_small else "no readable frame"}
    watermark["key"] = int(key)

    raw_tags = read_container_metadata(path) if kind == "video" else {}
    meta = parse_provenance(raw_tags)
    meta["tags"] = unescape_tags(raw_tags)
    if watermark["present"] and meta.get("watermark"):
        meta["matches_watermark"] = meta["watermark"] == f"{TOOL_ID:02x}:{watermark['payload']:06x}"

    if not c2pa:
        manifest = {"state": "not checked", "checked": False, "synthetic": False}
    elif kind == "images":
        manifest = summarise_states([read_manifest(path / n, *anchors) for n in names if (path / n).is_file()])
    else:
        manifest = read_manifest(path, *anchors)
    if watermark["present"] and manifest.get("facts", {}).get("watermark"):
        manifest["matches_watermark"] = manifest["facts"]["watermark"] == f"{TOOL_ID:02x}:{watermark['payload']:06x}"

    found = {"watermark": bool(watermark["present"]),
             "c2pa": manifest["state"] in PRESENT and bool(manifest.get("synthetic")),
             "metadata": bool(meta["synthetic"])}
    return {
        "input": str(path), "kind": kind, "frames_checked": len(soft), "size": size,
        "frames_unreadable": unreadable, "frames_too_small": too_small,
        "watermark": watermark, "c2pa": manifest, "metadata": meta, "found": found, "marked": any(found.values()),
        "verdict": _verdict(watermark, manifest, meta, found),
    }


PRESENT = ("trusted", "untrusted", "invalid", "partial")


def _verdict(watermark: dict, manifest: dict, meta: dict, found: dict) -> str:
    if not any(found.values()):
        return ("no faceswap watermark, C2PA manifest or provenance metadata found "
                "(this does not prove the file is authentic)")
    parts = []
    if found["watermark"]:
        parts.append(f"faceswap watermark (run tag {watermark['payload_hex']})")
    if found["c2pa"]:
        parts.append(f"{manifest['state']} C2PA manifest")
    if found["metadata"]:
        parts.append("provenance metadata")
    text = "SYNTHETIC: " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] + " found"
    if manifest["state"] == "invalid":
        codes = [c for c in manifest.get("failures", []) if c != "signingCredential.untrusted"]
        text += ("; the C2PA manifest is INVALID: the file was changed after signing"
                 + (f" ({', '.join(codes)})" if codes else f" ({manifest.get('error', 'unreadable manifest')})"))
    elif manifest["state"] == "absent" and found["watermark"]:
        text += ("; no C2PA manifest (it binds to the exact bytes: a re-encode or remux drops it), "
                 "so the watermark carries the proof")
    return text


def format_report(report: dict) -> str:
    """The short human summary `faceswap verify` prints."""
    wm, meta = report["watermark"], report["metadata"]
    size = "x".join(str(v) for v in report["size"]) if report["size"] else "?"
    n = report["frames_checked"]
    lines = [f"faceswap verify: {report['input']} ({report['kind']}, {size}, {n} frame{'s' if n != 1 else ''} checked)"]
    if not wm.get("checked"):
        lines.append(f"  watermark: not checked ({wm['reason']})")
    elif wm["present"]:
        lines.append(f"  watermark: PRESENT  tool tag {wm['tool_id']:02x} (faceswap)  run tag {wm['payload_hex']}")
        lines.append(
            f"             bit accuracy per frame {wm['bit_accuracy']:.3f} (raw {wm['raw_bit_accuracy']:.3f} before "
            f"error correction), decoded alone in {wm['frames_decoded']}/{wm['frames']} frames, score {wm['score']:.2f}")
        if wm["decision"] == "frames":
            lines.append("             (only some frames carry it: decided from the frames that decode alone)")
    else:
        lines.append(f"  watermark: not found in {wm['frames']} frame(s) (key {wm['key']})")
    lines.append(_c2pa_line(report["c2pa"], report["kind"]))
    if meta["synthetic"]:
        extra = "".join(f"  {k} {meta[k]}" for k in ("tool", "run_id", "watermark") if meta.get(k))
        match = meta.get("matches_watermark")
        lines.append(f"  metadata:  says SYNTHETIC (in '{meta['source']}'){extra}"
                     + ("" if match is None else f"  matches watermark: {'yes' if match else 'NO'}"))
    else:
        shown = {k: v for k, v in meta["tags"].items() if k not in ("major_brand", "minor_version", "compatible_brands")}
        lines.append("  metadata:  no provenance tags" + (f" (tags: {', '.join(sorted(shown))})" if shown else ""))
    if report["frames_unreadable"]:
        lines.append(f"  skipped:   {len(report['frames_unreadable'])} unreadable image(s)")
    lines.append(f"  verdict:   {report['verdict']}")
    return "\n".join(lines)


def _c2pa_line(m: dict, kind: str) -> str:
    state = m["state"]
    if state == "not checked":
        return "  c2pa:      not checked (c2pa.check=false)"
    if state == "absent":
        return "  c2pa:      no manifest" + (" (a re-encode or remux drops it; the watermark survives)"
                                             if kind == "video" else "")
    if state in ("unsupported", "remote"):
        return f"  c2pa:      not checked: {m.get('error', 'this format cannot carry a manifest')}"
    signer = m.get("signer") or {}
    who = f"signed by '{signer.get('common_name')}' ({signer.get('issuer')})" if signer.get("common_name") else ""
    trust = {"trusted": f"TRUSTED (anchor: {', '.join(m.get('trust_anchors') or ['?'])})",
             "untrusted": "valid signature, UNTRUSTED signer (no configured anchor issued it: c2pa.trust=CA.pem)",
             "invalid": "INVALID (" + ", ".join([c for c in m.get("failures", []) if c != "signingCredential.untrusted"]
                                                 or [m.get("error", "unreadable")]) + ")",
             "partial": "only some images carry one"}[state]
    line = f"  c2pa:      manifest {trust}"
    if who:
        line += f"\n             {who}"
    facts = m.get("facts") or {}
    if m.get("synthetic"):
        line += "\n             declares trainedAlgorithmicMedia" + "".join(
            f"  {k} {facts[k]}" for k in ("run_id", "watermark") if facts.get(k))
        ck = facts.get("checkpoint") or {}
        if ck.get("sha256"):
            line += f"  checkpoint sha256 {ck['sha256'][:16]}..."
    if m.get("matches_watermark") is not None:
        line += f"  matches watermark: {'yes' if m['matches_watermark'] else 'NO'}"
    if m.get("files"):
        line += "\n             images: " + ", ".join(f"{v} {k}" for k, v in sorted(m["files"].items()))
    return line


def run(cfg) -> int:
    """`faceswap verify INPUT [--json] [c2pa.trust=CA.pem] [max_frames=N] [key=K] [json=PATH]`.

    Exit status as grep's: 0 when a mark (watermark, C2PA manifest of synthetic media, provenance tags)
    is found, 1 when none is; bad input raises UserError (exit 2).
    """
    import json

    from faceswap.config import require
    from faceswap.utils import write_json_atomic

    path = require(cfg, "input", "verify", "the video, image or image folder to check")
    fmt = cfg.get("format", "text")
    if fmt not in ("text", "json"):
        raise UserError(f"format={fmt!r} must be text or json (--json)")
    c2pa = cfg.get("c2pa", True)
    c2pa = {"check": c2pa} if isinstance(c2pa, bool) else (c2pa if hasattr(c2pa, "get") else {"check": c2pa})
    check = c2pa.get("check", True)
    if not isinstance(check, bool):
        raise UserError(f"c2pa.check={check!r} must be true or false")
    key, max_frames = cfg.get("key", DEFAULT_KEY), cfg.get("max_frames", 150)
    if not isinstance(key, int) or isinstance(key, bool) or key < 0:
        raise UserError(f"key={key!r} is not a watermark key; give a non-negative integer (default {DEFAULT_KEY})")
    if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames < 1:
        raise UserError(f"max_frames={max_frames!r} must be a positive integer")
    progress = bool(cfg.get("progress", True)) and sys.stderr.isatty()
    report = verify_file(str(path), key=key, max_frames=max_frames, progress=progress, c2pa=check,
                         trust=c2pa.get("trust", "local"), keys=c2pa.get("keys", "auto"))
    if cfg.get("json"):
        write_json_atomic(cfg.json, report)
    if fmt == "json":
        print(json.dumps(report, default=str))
    else:
        print(format_report(report))
        if cfg.get("json"):
            print(f"  report:    {cfg.json}")
    return 0 if report["marked"] else 1
