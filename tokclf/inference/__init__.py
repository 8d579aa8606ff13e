"""Inference room: the one batched forward pass (torch and ONNX backends), entity decoding, the
Predictor, input readers and output writers, ONNX export and the HTTP server."""
