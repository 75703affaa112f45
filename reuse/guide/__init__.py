"""Guidance around training: `check` (sanity checks before a long run), `lr_find` (the
learning-rate range test), `plots` (loss curves) and `sparsity` (magnitude pruning)."""
