"""Provenance stamps on synthetic outputs: visible label, invisible watermark, container metadata, C2PA manifest, and verification."""
from faceswap.provenance.content_credentials import read_manifest
from faceswap.provenance.label import stamp_label
from faceswap.provenance.metadata import parse_provenance, provenance_metadata
from faceswap.provenance.stamp import stamp_frame
from faceswap.provenance.verify import verify_file
from faceswap.provenance.watermark import (
    WatermarkCodec,
    WatermarkResult,
    detect_watermark,
    embed_watermark,
    run_tag,
)

__all__ = [
    "stamp_label", "WatermarkCodec", "WatermarkResult", "embed_watermark", "detect_watermark", "run_tag",
    "provenance_metadata", "parse_provenance", "verify_file", "stamp_frame", "read_manifest",
]
