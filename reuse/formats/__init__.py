"""What a file is, and how models and weight-only files are read and written.

`paths.classify` says what a path is (one classifier for every command); `model_io` loads and
saves whole models (.keras, .h5 from Keras 3 or tf.keras 2, SavedModel folders);
`weight_files` reads tensors from weight-only files (.weights.h5, .npz, .safetensors, PyTorch
state dicts, TensorFlow checkpoints) without running their code.
"""
