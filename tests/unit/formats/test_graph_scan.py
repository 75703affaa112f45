"""SavedModels whose graph reaches outside the model (files, console, Python, network) are
refused without --unsafe: when loaded directly, inspected, or reloaded as a tuned model's
SavedModel block. Clean graphs (Keras exports, the SavedModel's own saver) load as before."""

from __future__ import annotations

import pytest

from reuse.core.errors import UnsafeModelError
from tests.helpers import cli


def _module(kind: str, marker):
    """A tf.Module whose serving function does something risky, in a form `kind`."""
    import tensorflow as tf

    class Risky(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones((4, 2)))
            if kind == "dataset-graph":  # a dataset whose map function writes `marker`,
                # serialized into a variable: neither is in the SavedModel's function library
                ds = tf.data.Dataset.from_tensors("x").map(
                    lambda s: tf.identity(s) if tf.io.write_file(str(marker), s) is None else s
                )
                self.g = tf.Variable(ds._as_serialized_graph())

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            if kind == "write":
                tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(x)))
            elif kind == "print-in-cond":
                x = tf.cond(tf.reduce_sum(x) > 0, lambda: self._loud(x), lambda: x)
            elif kind == "save-in-loop":
                x = tf.while_loop(lambda i, v: i < 1, lambda i, v: (i + 1, self._save(v)), (0, x))[
                    1
                ]
            elif kind == "dataset-graph":
                data = tf.data.experimental.from_variant(
                    tf.raw_ops.DatasetFromGraph(graph_def=self.g.read_value()),
                    tf.TensorSpec([], tf.string),
                )
                x += tf.cast(data.reduce(0, lambda n, s: n + tf.strings.length(s)), x.dtype) * 0
            elif kind == "descriptor-file":
                tf.io.decode_proto(
                    tf.strings.as_string(x[:, 0]),
                    "tensorflow.Example",
                    [],
                    [],
                    descriptor_source=str(marker),
                )
            return {"out": tf.matmul(x, self.w)}

        def _loud(self, x):
            tf.print("hello from the model")
            return x + 1.0

        def _save(self, x):
            tf.raw_ops.SaveV2(
                prefix=str(marker), tensor_names=["x"], shape_and_slices=[""], tensors=[x]
            )
            return x

    return Risky()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """SavedModels: 'clean' (Keras export), 'write' (tf.io.write_file in the signature),
    'print-in-cond' (tf.print inside a tf.cond branch), 'save-in-loop' (SaveV2, a checkpoint
    op, inside a while loop: allowed only where the saver alone reaches it)."""
    import keras
    import tensorflow as tf

    root = tmp_path_factory.mktemp("graphs")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    model.export(root / "clean", verbose=False)
    for kind in ("write", "print-in-cond", "save-in-loop", "dataset-graph", "descriptor-file"):
        module = _module(kind, root / f"{kind}.touched")
        tf.saved_model.save(module, root / kind, signatures={"serving_default": module.serve})
    return root


@pytest.mark.parametrize(
    "kind, op, reason",
    [
        ("write", "WriteFile", "reads or writes files"),
        ("print-in-cond", "PrintV2", "prints"),
        ("save-in-loop", "SaveV2", "reads or writes checkpoint files"),
        ("dataset-graph", "DatasetFromGraph", "runs a program the scan cannot see"),
        ("descriptor-file", "DecodeProtoV2", "reads or writes files"),
    ],
)
def test_scan_finds_the_op_wherever_the_graph_reaches_it(models, kind, op, reason):
    from reuse.formats.graph_scan import scan_savedmodel

    findings = scan_savedmodel(models / kind)
    assert [(f.op, f.reason) for f in findings] == [(op, reason)]
    assert findings[0].where != "the top-level graph"  # inside a function, branch or loop body


def test_a_clean_export_and_its_own_saver_pass(models):
    """Every SavedModel has SaveV2/RestoreV2 in its saver functions: those are not findings."""
    from tensorflow.core.protobuf import saved_model_pb2

    from reuse.formats.graph_scan import scan_savedmodel

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((models / "clean" / "saved_model.pb").read_bytes())
    ops = {n.op for f in proto.meta_graphs[0].graph_def.library.function for n in f.node_def}
    assert {"SaveV2", "RestoreV2"} <= ops
    assert scan_savedmodel(models / "clean") == []


def test_load_refuses_before_anything_runs_and_unsafe_loads(models):
    from reuse.formats.model_io import load_model

    with pytest.raises(UnsafeModelError, match=r"WriteFile \(reads or writes files\)"):
        load_model(models / "write")
    model = load_model(models / "write", unsafe=True)
    assert [tuple(t.shape) for t in model.outputs] == [(None, 2)]
    assert not (models / "write.touched").exists()  # loading ran nothing that writes


def test_a_tuned_models_block_is_scanned_when_it_reloads(models, tmp_path):
    """A .keras file that holds a SavedModel block reloads that SavedModel: refused without
    --unsafe when its graph is risky, as the folder itself is."""
    import keras

    from reuse.formats.model_io import load_model, save_model

    for kind, trusted in (("clean", False), ("print-in-cond", True)):
        loaded = load_model(models / kind, unsafe=trusted)
        tuned = keras.Model(loaded.inputs, keras.layers.Dense(1, name="head")(loaded.outputs[0]))
        save_model(tuned, tmp_path / f"{kind}.keras")
    assert load_model(tmp_path / "clean.keras").get_layer("head") is not None
    with pytest.raises(UnsafeModelError, match=r"PrintV2 \(prints\).*--unsafe"):
        load_model(tmp_path / "print-in-cond.keras")
    assert load_model(tmp_path / "print-in-cond.keras", unsafe=True).get_layer("head")


def test_cli_refuses_in_one_line_and_unsafe_inspects(models):
    result = cli(["inspect", str(models / "write")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the SavedModel")
    assert "WriteFile" in lines[0] and "pass --unsafe only if you trust" in lines[0]
    assert "Traceback" not in result.stderr
    trusted = cli(["inspect", str(models / "write"), "--unsafe"])
    assert trusted.exit_code == 0, trusted.stderr
    assert "serving_default" in trusted.stdout


def test_a_damaged_graph_file_is_one_clear_error(tmp_path):
    from reuse.core.errors import ModelLoadError
    from reuse.formats.graph_scan import scan_savedmodel

    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x96\x01 not a protobuf \xff\xff")
    with pytest.raises(ModelLoadError, match="cannot read SavedModel"):
        scan_savedmodel(tmp_path)


def test_a_dataset_graph_hidden_in_a_variable_is_refused_and_would_write(models):
    """DatasetFromGraph runs a serialized dataset graph (here read from a variable) whose
    functions are not in the SavedModel's library: refused; trusted, it writes the file."""
    import tensorflow as tf

    from reuse.formats.model_io import load_model

    with pytest.raises(UnsafeModelError, match=r"DatasetFromGraph \(runs a program"):
        load_model(models / "dataset-graph")
    marker = models / "dataset-graph.touched"
    assert not marker.exists()
    tf.saved_model.load(str(models / "dataset-graph")).signatures["serving_default"](
        tf.ones((1, 4))
    )
    assert marker.exists()  # what the scan stopped


def _tf1_savedmodel(path, kind: str, marker, other):
    """A TF1 SavedModel (tf.compat.v1 builder, y = x @ w): its own saver only ('clean'); the
    restore op, which the loader runs, also running SaveV2 at `marker` ('save-on-restore') or
    RestoreV2 of the checkpoint `other` ('read-other'); a signature reading the checkpoint
    the saver's filename tensor defaults to, `other`, when nothing feeds it
    ('read-by-signature'); or a local variable, whose initializer
    the loader runs, initialized after SaveV2 at `marker` and tucked into the save path
    ('save-in-local-init')."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        w = v1.get_variable("w", initializer=tf.ones((4, 2)), use_resource=True)
        y = tf.matmul(x, w, name="y")
        saver = v1.train.Saver(filename=str(other) if kind == "read-by-signature" else None)
        saver_def = saver.as_saver_def()
        restore = graph.get_operation_by_name(saver_def.restore_op_name)
        save = graph.get_operation_by_name(_op_name(saver_def.save_tensor_name))
        to_run = []

        def write():
            return tf.raw_ops.SaveV2(
                prefix=str(marker), tensor_names=["w"], shape_and_slices=[""], tensors=[1.0]
            )

        if kind == "save-on-restore":
            restore._add_control_input(write())
        elif kind == "read-other":
            read = tf.raw_ops.RestoreV2(
                prefix=str(other), tensor_names=["w"], shape_and_slices=[""], dtypes=[tf.float32]
            )
            restore._add_control_input(read[0].op)
        elif kind == "read-by-signature":  # the saver's filename tensor, not fed: its default
            read = tf.raw_ops.RestoreV2(
                prefix=graph.get_tensor_by_name(saver_def.filename_tensor_name),
                tensor_names=["w"],
                shape_and_slices=[""],
                dtypes=[tf.float32],
            )
            y = tf.identity(y + tf.reshape(read[0], [-1])[0], name="y_plus")
        elif kind == "save-in-local-init":
            with tf.control_dependencies([write()]):
                local = v1.get_variable(
                    "local",
                    initializer=tf.zeros(()),
                    use_resource=True,
                    collections=[v1.GraphKeys.LOCAL_VARIABLES],
                )
            save._add_control_input(local.initializer)
            to_run.append(local.initializer)
        with v1.Session(graph=graph) as sess:
            sess.run([w.initializer, *to_run])
            builder = v1.saved_model.Builder(str(path))
            signature = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map={"serving_default": signature}, saver=saver
            )
            builder.save()


def _op_name(tensor: str) -> str:
    return tensor.split(":")[0]


TF1_KINDS = ("clean", "save-on-restore", "read-other", "read-by-signature", "save-in-local-init")


@pytest.fixture(scope="module")
def tf1_models(tmp_path_factory):
    """TF1 SavedModels (`_tf1_savedmodel`), one per TF1_KINDS, and the checkpoint 'other'."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("tf1")
    tf.raw_ops.SaveV2(
        prefix=str(root / "other"),
        tensor_names=["w"],
        shape_and_slices=[""],
        tensors=[tf.fill((4, 2), 7.0)],
    )
    for kind in TF1_KINDS:
        _tf1_savedmodel(root / kind, kind, root / f"{kind}.touched", root / "other")
    for built in root.glob("*.touched*"):  # 'save-in-local-init' wrote while it was built
        built.unlink()
    return root


@pytest.mark.parametrize(
    "kind, op",
    [
        ("save-on-restore", "SaveV2"),
        ("read-other", "RestoreV2"),
        ("read-by-signature", "RestoreV2"),
        ("save-in-local-init", "SaveV2"),
    ],
)
def test_a_tf1_saver_that_does_more_than_restore_its_own_checkpoint_is_refused(
    tf1_models, kind, op
):
    """The loader runs a TF1 SavedModel's restore op (with its own checkpoint path) and its
    local variables' initializers: a checkpoint write there, or a read of another file, is a
    finding; so is a read of the saver's filename tensor outside the restore op, where the
    loader does not feed it. Trusted, the write happens on load, the read when it predicts."""
    import numpy as np

    from reuse.formats.graph_scan import scan_savedmodel
    from reuse.formats.model_io import load_model

    findings = scan_savedmodel(tf1_models / kind)
    assert [(f.op, f.where) for f in findings] == [(op, "the top-level graph")]
    with pytest.raises(UnsafeModelError, match=op):
        load_model(tf1_models / kind)
    marker = tf1_models / f"{kind}.touched.index"
    assert not marker.exists()
    model = load_model(tf1_models / kind, unsafe=True)
    assert [tuple(t.shape) for t in model.outputs] == [(None, 2)]
    assert marker.exists() == (op == "SaveV2")  # what the scan stopped
    if kind == "read-by-signature":  # 4 from w, 7 from the other checkpoint
        assert np.allclose(model(np.ones((1, 4), np.float32)), 11.0)


def test_a_tf1_savedmodel_with_its_own_saver_loads(tf1_models):
    """The TF1 saver's SaveV2 (save path) and RestoreV2 of the loader's path are allowed."""
    import numpy as np

    from reuse.formats.graph_scan import scan_savedmodel
    from reuse.formats.model_io import load_model

    assert scan_savedmodel(tf1_models / "clean") == []
    model = load_model(tf1_models / "clean")
    assert np.allclose(model(np.ones((1, 4), np.float32)), 4.0)


def test_a_legacy_savedmodels_lambda_is_refused_before_tf_keras_runs_it(tmp_path):
    """tf_keras rebuilds a tf.keras SavedModel's layers from keras_metadata.pb, outside safe
    mode unless told: a Lambda's marshalled bytecode would run on load. Refused without
    --unsafe, before anything runs; trusted, it runs (the file appears)."""
    tf_keras = pytest.importorskip("tf_keras")
    from reuse.formats.model_io import load_model

    marker = tmp_path / "lambda.touched"
    touch = tf_keras.layers.Lambda(lambda x, p=str(marker): (open(p, "a").write("ran"), x)[1])
    inputs = tf_keras.Input((4,))
    outputs = tf_keras.layers.Dense(2)(touch(inputs))
    tf_keras.Model(inputs, outputs).save(tmp_path / "legacy", save_format="tf")
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafeModelError, match="Lambda layer with Python code"):
        load_model(tmp_path / "legacy")
    assert not marker.exists()
    try:  # trusted: tf_keras runs the Lambda while it rebuilds the model
        load_model(tmp_path / "legacy", unsafe=True)
    except UnsafeModelError:  # Keras 3 may then refuse the Lambda in the .h5 hand-over
        pass
    assert marker.exists()


def test_a_legacy_savedmodels_op_layer_is_refused_before_tf_keras_calls_it(tmp_path, monkeypatch):
    """A tf_keras op layer (TFOpLambda: `tf.math.multiply` on a Keras tensor) calls the TF
    function its config names while tf_keras rebuilds the model; Keras 3 has no such layer.
    The model is refused as before, now before tf_keras is asked to load it."""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    from reuse.core.errors import ModelLoadError
    from reuse.formats.model_io import load_model

    inputs = tf_keras.Input((4,))
    outputs = tf.math.multiply(tf_keras.layers.Dense(2)(inputs), 2.0)
    tf_keras.Model(inputs, outputs).save(tmp_path / "legacy", save_format="tf")

    def not_called(*args, **kwargs):
        raise AssertionError("tf_keras rebuilt the model")

    monkeypatch.setattr(tf_keras.models, "load_model", not_called)
    for unsafe in (False, True):
        with pytest.raises(ModelLoadError, match="not available here: TFOpLambda"):
            load_model(tmp_path / "legacy", unsafe=unsafe)


@pytest.mark.parametrize("how", ["nested-attr", "api-implements"])
def test_a_save_function_that_serving_may_reach_counts_as_run(models, tmp_path, how):
    """A save-path function (SaveV2, MergeV2Checkpoints) that serving may reach is not the
    saver's alone: named inside a call's function attribute ('nested-attr': instantiation
    attributes the callee calls through a placeholder), or declaring an `api_implements`
    (Grappler's implementation selector may swap it in for a call to a function declaring
    the same). Its checkpoint ops are findings."""
    import shutil

    from tensorflow.core.protobuf import saved_model_pb2

    from reuse.formats.graph_scan import scan_savedmodel

    folder = tmp_path / how
    shutil.copytree(models / "clean", folder)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    meta = proto.meta_graphs[0]
    save_call = meta.saver_def.save_tensor_name.split(":")[0]
    save_fn = next(n for n in meta.graph_def.node if n.name == save_call).attr["f"].func.name
    if how == "nested-attr":
        serving = next(
            n
            for f in meta.graph_def.library.function
            for n in f.node_def
            if n.op == "StatefulPartitionedCall" and n.attr["f"].func.name != save_fn
        )
        serving.attr["f"].func.attr["inner"].func.name = save_fn
    else:
        fdef = next(f for f in meta.graph_def.library.function if f.signature.name == save_fn)
        fdef.attr["api_implements"].s = b"serve_v1"
    (folder / "saved_model.pb").write_bytes(proto.SerializeToString())
    assert {(f.op, f.where) for f in scan_savedmodel(folder)} == {
        ("SaveV2", save_fn),
        ("MergeV2Checkpoints", save_fn),
    }
