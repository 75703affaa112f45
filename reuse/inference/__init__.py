"""Using a trained model: `evaluate` (loss, accuracy, per-class table) and `predict`;
`quantize` (int8 weights through Keras, measured before and after)."""
