"""Inference: drawing (and, later, detectors, the predictor and ONNX export)."""
