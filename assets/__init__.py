"""Files shipped with faceswap (demo checkpoint, judges, detectors, HTML templates), as the package faceswap.assets."""
