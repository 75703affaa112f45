"""Using a trained model: `evaluate` (loss, accuracy, per-class table) and `predict`."""
