"""Convert: swap the faces of a video or image folder with a trained checkpoint and blend them back."""
