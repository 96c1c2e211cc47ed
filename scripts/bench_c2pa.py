"""Benchmark of the C2PA stamp: bytes the manifest adds to a video and the time to sign and to verify it.

For each clip (ffmpeg's test pattern, H.264, no audio) it signs a copy the way convert does (the
manifest with the source video as its hashed ingredient, the local ES256 chain, no timestamp
authority), then reads it back with the local CA as trust anchor. Signing hashes the whole output
(BMFF hash) and the source (ingredient), so its time grows with the file; the manifest's size does not.

    python scripts/bench_c2pa.py --json bench_c2pa.json
    python scripts/bench_c2pa.py --clips 240p:2 720p:10 1080p:30 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"240p": (320, 240), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def make_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    from faceswap.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size[0]}x{size[1]}:rate=25", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
                   check=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", default=["240p:2", "720p:10", "720p:60"], help="SIZE:SECONDS, e.g. 720p:10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import c2pa

    from faceswap.provenance import content_credentials as cc

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        chain = cc.load_chain(keys=tmp / "keys")
        pem, names = cc.trust_anchors("local", tmp / "keys")
        for spec in args.clips:
            name, seconds = spec.split(":")
            src = make_clip(tmp / f"{name}_{seconds}.mp4", SIZES[name], float(seconds))
            sign_s, verify_s, added = [], [], []
            for i in range(args.repeats):
                out = tmp / f"out_{i}.mp4"
                shutil.copy(src, out)
                signer = cc.ManifestSigner(chain, {"run_id": "bench", "watermark": "f5:000000"})
                t0 = time.perf_counter()
                signer(out, title="out.mp4", source=src)
                sign_s.append(time.perf_counter() - t0)
                added.append(out.stat().st_size - src.stat().st_size)
                t0 = time.perf_counter()
                state = cc.read_manifest(out, pem, names)["state"]
                verify_s.append(time.perf_counter() - t0)
                assert state == "trusted", state
                out.unlink()
            rows.append({"clip": spec, "size": list(SIZES[name]), "seconds": float(seconds),
                         "file_bytes": src.stat().st_size, "manifest_bytes_added": int(statistics.median(added)),
                         "sign_s_median": round(statistics.median(sign_s), 4),
                         "verify_s_median": round(statistics.median(verify_s), 4)})
    print(f"{'clip':<10} {'file MB':>8} {'manifest B':>11} {'added %':>8} {'sign ms':>8} {'verify ms':>10}")
    for r in rows:
        print(f"{r['clip']:<10} {r['file_bytes'] / 1e6:>8.2f} {r['manifest_bytes_added']:>11} "
              f"{100 * r['manifest_bytes_added'] / r['file_bytes']:>8.3f} {1000 * r['sign_s_median']:>8.1f} "
              f"{1000 * r['verify_s_median']:>10.1f}")
    result = {"rows": rows, "repeats": args.repeats, "c2pa_python": c2pa.__version__, "c2pa_rs": c2pa.sdk_version(),
              "machine": platform.platform(), "python": platform.python_version()}
    if args.json:
        from faceswap.utils import write_json_atomic

        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
