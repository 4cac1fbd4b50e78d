"""Inference: person detectors, the top-down pose predictor, the demo job, ONNX export and
drawing of 133-point skeletons (docs/inference.md)."""
