"""File formats: what a path is (`paths.classify`), loading and saving models (`model_io`), and
reading weight-only files (`weight_files`)."""
