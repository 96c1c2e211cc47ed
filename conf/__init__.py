"""Hydra configs of faceswap, shipped inside the wheel as faceswap.conf (a package so that pkg:// finds it)."""
