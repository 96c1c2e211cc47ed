"""Networks only: the face-swap autoencoder and its checkpoints (stages live in train/, convert/)."""
from faceswap.models.autoencoder import Autoencoder, AutoencoderConfig
from faceswap.models.checkpoint import Checkpoint, find_latest, load_checkpoint, save_checkpoint

__all__ = ["Autoencoder", "AutoencoderConfig", "Checkpoint", "load_checkpoint", "save_checkpoint", "find_latest"]
