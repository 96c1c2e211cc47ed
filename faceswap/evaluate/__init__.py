"""Measuring a swap against the synthetic actors' ground truth: metrics, the judges (probe), the stage, the report."""
