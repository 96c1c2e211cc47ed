"""Detection of swapped faces: features, detectors, data sets, experiments, video scan and the lecture page."""
