"""faceswap: a research and teaching toolkit for the autoencoder face swap and for detecting it."""

__version__ = "0.1.0"
TOOL_ID = "faceswap"
