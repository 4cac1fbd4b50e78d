"""Data: synthetic scenes, top-down samples, augmentation, box jitter and the DataModule."""
