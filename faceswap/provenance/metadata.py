"""Provenance metadata: the container tags that say a file is synthetic and made by this toolkit, and reading them back.

MP4 keeps only its standard tags (title, comment, description, ...) unless the muxer is told to
write free-form keys, and a plain re-encode copies the standard ones; so the machine-readable
statement lives inside ``description`` and ``comment``, and the ``faceswap_*`` keys are a bonus
for containers that keep any key (MKV, or MP4 written with ``-movflags +use_metadata_tags``).
"""
from __future__ import annotations

import re

from faceswap import TOOL_ID as TOOL_NAME
from faceswap import __version__

MARKER = "faceswap:synthetic=1"
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ESCAPED = re.compile(r"\\(.)")


def _clean(value: object) -> str:
    # One line, no field separators: ffmpeg's -metadata and our own "k=v; k=v" parsing both rely on it.
    text = " ".join(str(value).split())
    return text.replace(";", ",").replace("\\", "/")


def provenance_metadata(run_id: str, extra: dict | None = None) -> dict[str, str]:
    """Container tags for a synthetic output of run ``run_id``; ``extra`` adds ``key: value`` facts.

    ``extra`` keys must be lower-case identifiers (they become ``faceswap_<key>`` tags and
    ``key=value`` fields of the description).
    """
    from faceswap.provenance.watermark import TOOL_ID as WATERMARK_TAG
    from faceswap.provenance.watermark import run_tag

    run = _clean(run_id)
    if not run:
        raise ValueError("run_id must not be empty")
    fields = {"tool": f"{TOOL_NAME}/{__version__}", "run_id": run,
              "watermark": f"{WATERMARK_TAG:02x}:{run_tag(run):06x}"}
    for key, value in (extra or {}).items():
        if not _KEY_RE.match(str(key)):
            raise ValueError(f"metadata key {key!r} must be a lower-case identifier (a-z, 0-9, _)")
        fields[str(key)] = _clean(value)
    statement = "; ".join([MARKER] + [f"{k}={v}" for k, v in fields.items()])
    tags = {
        "title": f"SYNTHETIC - face swapped by {TOOL_NAME}",
        "comment": f"Synthetic media made by {TOOL_NAME} {__version__} (autoencoder face swap): "
                   f"a face in this file was replaced. {statement}",
        "description": statement,
        "faceswap_synthetic": "1",
    }
    tags.update({f"faceswap_{k}": v for k, v in fields.items()})
    return tags


def unescape_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags as written: ffmpeg's metadata dump escapes '=', ';', '#' and '\\' with a backslash.

    Our own values never hold a backslash, so unescaping them is exact.
    """
    return {str(k).lower(): _ESCAPED.sub(r"\1", str(v)) for k, v in (tags or {}).items()}


def parse_provenance(tags: dict[str, str]) -> dict:
    """Read provenance back from container tags: {"synthetic", "tool", "run_id", "watermark", "fields", "source"}."""
    tags = unescape_tags(tags)
    fields: dict[str, str] = {}
    source = None
    for key in ("description", "comment", "synopsis"):
        text = tags.get(key, "")
        if MARKER in text:
            source = source or key
            for part in text[text.index(MARKER):].split(";")[1:]:
                if "=" in part:
                    k, v = part.split("=", 1)
                    fields.setdefault(k.strip(), v.strip())
    for key, value in tags.items():
        if key.startswith("faceswap_") and key != "faceswap_synthetic":
            fields.setdefault(key[len("faceswap_"):], value)
    if tags.get("faceswap_synthetic") == "1":
        source = source or "faceswap_synthetic"
    return {
        "synthetic": source is not None,
        "tool": fields.get("tool"),
        "run_id": fields.get("run_id"),
        "watermark": fields.get("watermark"),
        "fields": fields,
        "source": source,
    }
