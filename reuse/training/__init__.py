"""Fine-tuning: options, the transfer model, stages, the stage loop and its policies.

Flow: `finetune` (finetune.py) builds the transfer model (transfer.py) and its inputs
(inputs.py: raw rows or cached taps), asks a policy (plans.py: one stage, gradual unfreezing,
reuse-depth search) for a list of stages, and hands them to the stage loop (runner.py), which
trains each one (stage.py) with `fit_arrays` (loop.py), optimizers.py, schedules.py and
discriminative.py, checkpointing as it goes (checkpoints.py) and recording history.py.
setup.py is the model/data/cache resolution that every training command shares.
distribute.py runs it all under a `tf.distribute` strategy (`finetune --distribute`):
`fit_arrays` then trains with its replicated steps.
lora.py puts Keras' LoRA adapters on the reused layers and merges or saves them; precision.py
scales the loss of float16 mixed-precision training.
"""
