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
    for kind in ("write", "print-in-cond", "save-in-loop"):
        module = _module(kind, root / f"{kind}.touched")
        tf.saved_model.save(module, root / kind, signatures={"serving_default": module.serve})
    return root


@pytest.mark.parametrize(
    "kind, op, reason",
    [
        ("write", "WriteFile", "reads or writes files"),
        ("print-in-cond", "PrintV2", "prints"),
        ("save-in-loop", "SaveV2", "reads or writes checkpoint files"),
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
