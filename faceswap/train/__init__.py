"""The train stage: data and augmentation, random warp, losses, and the loop (`faceswap train`)."""
