"""The extract stage: detect faces, align them onto a template, track and smooth the target, write crops and alignments."""
from faceswap.extract.align import (align_face, alignment_matrix, paste_matrix, template_points, transform_points,
                                    umeyama, warp_from_crop, warp_to_crop)
from faceswap.extract.alignments import Alignments, Face, FrameRecord, load_alignments, save_alignments
from faceswap.extract.pipeline import ExtractResult, ExtractSettings, extract

__all__ = [
    "align_face", "alignment_matrix", "paste_matrix", "template_points", "transform_points", "umeyama",
    "warp_from_crop", "warp_to_crop", "Alignments", "Face", "FrameRecord", "load_alignments", "save_alignments",
    "ExtractResult", "ExtractSettings", "extract",
]
