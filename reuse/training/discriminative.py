"""Discriminative learning rates: one optimizer per group of layers, each with its own rate.

Scaling gradients does not give a layer a smaller learning rate under Adam, RMSProp or
AdaGrad: they divide the gradient's scale away. So each group keeps its own optimizer (and
its own moment estimates), built from the same factory with a scaled learning rate.
"""

from __future__ import annotations


def _scaled(lr, scale: float):
    """`lr` times `scale`, for a float or a LearningRateSchedule."""
    import keras

    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):

        class Scaled(keras.optimizers.schedules.LearningRateSchedule):
            def __call__(self, step):
                return lr(step) * scale

            def get_config(self):
                return {"scale": scale}

        return Scaled()
    return float(lr) * scale


def group_variables(model, scales: dict[str, float]) -> list[tuple[float, list]]:
    """[(scale, variables)] for the model's trainable variables; layers not named get scale 1."""
    from reuse.surgery.layer_tree import walk

    by_scale: dict[float, list] = {}
    seen: set[int] = set()
    for entry in walk(model):
        if entry.is_container or not entry.layer.trainable:
            continue
        scale = float(scales.get(entry.path, scales.get(entry.path.rsplit("/", 1)[-1], 1.0)))
        for v in entry.layer.trainable_weights:
            if id(v) not in seen:
                seen.add(id(v))
                by_scale.setdefault(scale, []).append(v)
    return sorted(by_scale.items(), key=lambda kv: -kv[0])


def GroupedOptimizerModel(inner, factory, lr, scales: dict[str, float]):  # noqa: N802 - builds a class
    """A training wrapper around `inner` whose train_step applies one optimizer per lr group.

    The wrapper only trains; `inner` (which shares its layers with the whole model) is what
    gets saved. The group with scale 1 (the head) is the wrapper's `optimizer`, so callbacks
    that read or change `model.optimizer` act on it.
    """
    import keras
    import tensorflow as tf
    from keras.src.losses.loss import unscale_loss_for_distribution

    groups = group_variables(inner, scales)

    class _Grouped(keras.Model):
        def __init__(self):
            super().__init__(name=f"{inner.name}_grouped")
            self.inner = inner
            self.groups = []
            for scale, variables in groups:
                opt = factory(_scaled(lr, scale))
                opt.build(variables)
                self.groups.append((scale, opt, variables))

        def call(self, x, training=False):
            return self.inner(x, training=training)

        def train_step(self, data):
            x, y = data[0], data[1]
            with tf.GradientTape() as tape:
                y_pred = self.inner(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
            variables = [v for _, _, vs in self.groups for v in vs]
            grads = tape.gradient(loss, variables)
            start = 0
            for _, opt, vs in self.groups:
                opt.apply(grads[start : start + len(vs)], vs)
                start += len(vs)
            for metric in self.metrics:
                if metric.name == "loss":
                    # Under tf.distribute the loss is scaled by 1/replicas for the gradient.
                    metric.update_state(unscale_loss_for_distribution(loss))
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    model = _Grouped()
    main = next(
        (opt for scale, opt, _ in model.groups if scale == 1.0),
        model.groups[0][1] if model.groups else None,
    )
    model._reuse_main_optimizer = main
    original_compile = model.compile

    def compile_with_main(**kwargs):
        kwargs.setdefault("optimizer", main if main is not None else "sgd")
        return original_compile(**kwargs)

    model.compile = compile_with_main
    return model
