"""Pretraining: make a base model when no pretrained one fits the task.

- `autoencoder.pretrain_autoencoder`: an autoencoder (Dense or convolutional, stacked or
  end-to-end, denoising, sparse) trained on unlabeled rows; its encoder is the base.
- `pairs.pretrain_pairs`: a siamese network trained on "same class?" pairs drawn from a
  labelled set (an auxiliary task with cheap labels); its tower is the base.

Both train on `reuse.training`'s stage loop (`runner.run_stages` on `loop.fit_arrays`), so
optimizers, schedules, early stopping, checkpoints and `--resume` work as in `finetune`, and
both return a `result.PretrainResult` whose `save` writes the base (.keras), its history and
a report.
"""
