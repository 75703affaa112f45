"""The tuning commands: `lr-find`, `check`, `plot`, `sparsify` (and FTRL's exact zeros)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import classification_data, cli, last_record, mlp, save_npz, shell


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """An MLP frozen up to hidden2, saved to disk, with train/valid .npz of 3 classes."""
    tmp = tmp_path_factory.mktemp("tuning")
    model = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1)
    for name in ("hidden1", "hidden2"):
        model.get_layer(name).trainable = False
    path = tmp / "base.keras"
    model.save(path)
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    train = save_npz(tmp / "train.npz", x[:60], y[:60])
    valid = save_npz(tmp / "valid.npz", x[60:], y[60:])
    return tmp, path, train, valid


def _weights(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


def _png_ok(path, min_bytes=5_000):
    import matplotlib.image

    assert path.exists() and path.stat().st_size > min_bytes
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# ------------------------------------------------------------------------------ lr-find


def test_suggestion_rules_on_a_known_curve():
    from reuse.training.lr_range import steepest, valley

    lrs = list(np.logspace(-6, 1, 50))
    # Flat, then a steady fall from step 10 to 40 with its steepest part at 20-25, then a blow-up.
    losses = (
        [2.3] * 10
        + list(np.linspace(2.3, 2.0, 10))
        + list(np.linspace(1.9, 0.9, 6))
        + list(np.linspace(0.85, 0.3, 14))
        + list(np.linspace(0.4, 9, 10))
    )
    assert lrs[19] <= steepest(lrs, losses) <= lrs[26]
    pick = valley(lrs, losses)
    assert lrs[10] < pick < lrs[40]  # inside the descent, before the minimum


def test_lr_find_restores_weights_and_flags(task):
    from reuse import load_data, load_model
    from reuse.guide.lr_find import lr_find
    from reuse.training.options import FinetuneOptions

    _, path, train, _ = task
    base = load_model(path)
    before, flags = _weights(base), [layer.trainable for layer in base.layers]
    # unfreeze all: the sweep trains the reused layers too, so there is something to restore
    result = lr_find(
        base,
        load_data(train),
        options=FinetuneOptions(unfreeze="all", seed=0),
        start=1e-4,
        end=100,
        steps=40,
    )
    for a, b in zip(before, base.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert [layer.trainable for layer in base.layers] == flags
    assert result.rule == "valley" and set(result.suggestions) == {"valley", "steepest"}
    assert result.lrs == sorted(result.lrs) and 1e-4 <= result.suggestion <= result.lrs[-1]
    assert result.stopped_early and len(result.lrs) < 40  # lr 100 blows the loss up
    assert min(result.smoothed) < result.smoothed[0]  # the loss did drop somewhere


def test_lr_find_trains_from_the_cache(task, tmp_path, monkeypatch):
    from reuse import load_data, load_model
    from reuse.cache import cache_features
    from reuse.guide.lr_find import lr_find

    _, path, train, _ = task
    base = load_model(path)
    cache_features(base, load_data(train), tmp_path / "feats.h5", taps=["hidden2"])

    def boom(*args, **kwargs):
        raise AssertionError("a layer below the cached tap ran")

    for name in ("hidden1", "hidden2"):
        monkeypatch.setattr(base.get_layer(name), "call", boom)
    result = lr_find(base, None, features=tmp_path / "feats.h5", start=1e-4, end=1, steps=10)
    assert result.tap == "hidden2" and len(result.lrs) > 0


def test_lr_find_bad_range_is_one_error_line(task):
    _, path, train, _ = task
    result = cli(["lr-find", path, "--data", train, "--start", "1", "--end", "0.1"])
    assert result.exit_code == 2
    assert "`end` must be greater than start=1. Received: end=0.1" in result.stderr
    result = cli(["lr-find", path, "--data", train, "--plot", "lr.pdf"])
    assert result.exit_code == 2 and "--plot writes a PNG" in result.stderr


def test_lr_find_pipes_its_suggestion_into_finetune(task):
    tmp, path, train, _ = task
    proc = shell(
        f"reuse lr-find {path} --data {train} --steps 25 --start 1e-4 --end 10 --seed 0"
        f" | reuse finetune --data {train} --lr from-record --epochs 1 -o piped.keras",
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr
    record = last_record(proc.stdout)
    assert record["command"] == "finetune"
    assert record["stages"][0]["lr"] == pytest.approx(
        record["lr"]
    )  # finetune trained at the suggestion
    assert record["lr_rule"] == "valley"
    assert "suggested lr" in proc.stderr and "┤" in proc.stderr  # the terminal chart


def test_lr_find_cli_writes_a_plot_and_a_record(task):
    tmp, path, train, _ = task
    result = cli(
        [
            "lr-find",
            path,
            "--data",
            train,
            "--steps",
            "20",
            "--start",
            "1e-4",
            "--rule",
            "steepest",
            "--plot",
            tmp / "lr.png",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["command"] == "lr-find" and record["lr_rule"] == "steepest"
    assert record["lr"] == record["lr_suggestions"]["steepest"]
    assert record["lr_plot"] == str((tmp / "lr.png").resolve())
    _png_ok(tmp / "lr.png")


# -------------------------------------------------------------------------------- check


def test_check_passes_a_healthy_model_and_leaves_it_unchanged(task):
    from reuse import load_data, load_model
    from reuse.guide.check import check
    from reuse.training.options import FinetuneOptions

    _, path, train, _ = task
    base = load_model(path)
    before = _weights(base)
    results = check(base, load_data(train), FinetuneOptions(seed=0, l2=0.5, dropout=0.5), steps=200)
    assert [r.name for r in results] == ["initial_loss", "overfit_tiny", "gradients", "activations"]
    by_name = {r.name: r for r in results}
    # Regularization off: the strong l2 and dropout above must not count in the reference loss.
    assert by_name["initial_loss"].status == "pass", by_name["initial_loss"].reason
    assert by_name["overfit_tiny"].status == "pass", by_name["overfit_tiny"].reason
    assert by_name["overfit_tiny"].details["rows"] == 20
    assert {row["layer"] for row in by_name["gradients"].details["layers"]} >= {
        "hidden1",
        "hidden4",
    }
    for a, b in zip(before, base.get_weights(), strict=True):
        assert np.array_equal(a, b)


def _dead_relu_model(path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                12,
                activation="relu",
                name="dead",
                bias_initializer=keras.initializers.Constant(-100.0),
            ),
            keras.layers.Dense(6, activation="tanh", name="squash"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ]
    )
    model.save(path)
    return path


def test_check_fails_with_exit_code_3_and_says_why(task, tmp_path):
    from reuse.core import exit_codes

    _, _, train, _ = task
    bad = _dead_relu_model(tmp_path / "dead.keras")
    result = cli(["check", bad, "--data", train, "--steps", "30", "--json"])
    assert result.exit_code == exit_codes.CHECK_FAILED
    record = json.loads(result.stdout)
    status = {c["name"]: c for c in record["checks"]}
    assert record["passed"] is False
    assert status["activations"]["status"] == "fail" and "dead" in status["activations"]["reason"]
    assert status["overfit_tiny"]["status"] == "fail"
    assert status["gradients"]["status"] == "warn" and "vanishing" in status["gradients"]["reason"]
    assert "check(s) failed" in result.stderr


def test_check_cli_exit_0_when_nothing_fails(task):
    _, path, train, _ = task
    result = cli(["check", path, "--data", train, "--json", "--seed", "0"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["passed"] is True and all(
        c["status"] in ("pass", "warn") for c in record["checks"]
    )


# --------------------------------------------------------------------------------- plot


def _history(path, stages=(0,), epochs=4, lr=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    rows, epoch = [], 0
    for stage in stages:
        for _ in range(epochs):
            epoch += 1
            rows.append(
                {
                    "stage": stage,
                    "epoch": epoch,
                    "loss": 1 / epoch + rng.random() * 0.1,
                    "accuracy": 1 - 1 / (epoch + 1),
                    "val_loss": 1.1 / epoch,
                    "val_accuracy": 0.9 - 1 / (epoch + 2),
                    "lr": lr / 2**stage,
                    "tap": "input",
                }
            )
    from reuse.training.history import write_history

    return write_history(rows, path)


def test_plot_histories_with_stages_is_a_real_png(task, tmp_path):
    a_csv, _ = _history(tmp_path / "a", stages=(0, 1, 2))
    _, b_json = _history(tmp_path / "b", seed=1)
    out = tmp_path / "curves.png"
    result = cli(["plot", a_csv, b_json, "-o", out, "--smooth", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["plot"] == str(out.resolve())
    _png_ok(out)


def test_plot_reads_the_history_from_the_piped_record(task, tmp_path):
    a_csv, _ = _history(tmp_path / "run", stages=(0, 1))
    record = json.dumps(
        {"reuse": "0", "command": "finetune", "model": "m.keras", "history": str(a_csv)}
    )
    result = cli(["plot", "-o", tmp_path / "piped.png"], input=record)
    assert result.exit_code == 0, result.stderr
    _png_ok(tmp_path / "piped.png")


def test_plot_errors(tmp_path):
    result = cli(["plot", tmp_path / "missing.csv", "-o", tmp_path / "x.png"])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    a_csv, _ = _history(tmp_path / "a")
    result = cli(["plot", a_csv, "-o", tmp_path / "x.png", "--smooth", "1"])
    assert result.exit_code == 2 and "Received: smooth=1" in result.stderr
    result = cli(["plot", a_csv, "-o", tmp_path / "x.jpg"])
    assert result.exit_code == 2 and "PNG" in result.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.jpg").exists()


# ----------------------------------------------------------------------------- sparsify


def test_sparsify_layer_and_global_scope():
    from reuse.guide.sparsity import sparsify

    model = mlp(n_in=8, hidden=2, units=10, n_out=3, seed=0)
    biases = [np.array(layer.bias) for layer in model.layers]
    report = sparsify(model, sparsity=0.5, scope="layer")
    for row in report.rows:
        assert row["zeros"] == int(0.5 * row["size"])
    assert [np.array(layer.bias) for layer in model.layers][0].tolist() == biases[
        0
    ].tolist()  # biases untouched

    model = mlp(n_in=8, hidden=2, units=10, n_out=3, seed=0)
    kernels = np.concatenate([np.abs(np.array(layer.kernel)).ravel() for layer in model.layers])
    report = sparsify(model, sparsity=0.7, scope="global")
    assert report.zeros == int(0.7 * kernels.size)
    # global: the survivors are the largest weights over all layers
    survivors = np.concatenate([np.abs(np.array(layer.kernel)).ravel() for layer in model.layers])
    assert survivors[survivors > 0].min() >= np.sort(kernels)[report.zeros - 1]


def test_sparsify_threshold_and_layer_selection():
    from reuse.core.errors import SelectionError
    from reuse.guide.sparsity import sparsify

    model = mlp(n_in=8, hidden=3, units=10, n_out=3, seed=0)
    untouched = np.array(model.get_layer("hidden3").kernel)
    report = sparsify(model, threshold=0.2, layers="hidden[12]")
    assert [r["layer"] for r in report.rows] == ["hidden1", "hidden2"]
    for name in ("hidden1", "hidden2"):
        k = np.array(model.get_layer(name).kernel)
        assert np.all((k == 0) | (np.abs(k) >= 0.2)) and np.any(k == 0)
    assert np.array_equal(np.array(model.get_layer("hidden3").kernel), untouched)
    with pytest.raises(SelectionError, match="no layer name fully matches"):
        sparsify(model, threshold=0.2, layers="hiden9")


def test_sparsify_cli_reports_accuracy_and_inspect_shows_zeros(task):
    tmp, path, train, valid = task
    out = tmp / "sparse.keras"
    result = cli(["sparsify", path, "--sparsity", "0.9", "--data", valid, "-o", out, "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"] == str(out.resolve())
    assert record["sparsity"]["sparsity"] == pytest.approx(0.9, abs=0.02)
    assert {"accuracy_before", "accuracy", "loss_before", "loss"} <= set(record["metrics"])
    assert "accuracy" in result.stderr and "→" in result.stderr
    shown = cli(["inspect", out, "--weights", "--format", "csv"])
    assert shown.exit_code == 0, shown.stderr
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    kernels = [r for r in rows if r["weight"].endswith("/kernel")]
    assert kernels and all(float(r["zeros"]) >= 0.85 for r in kernels)  # the zeros column


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "exactly one of --threshold and --sparsity"),
        (["--threshold", "0.1", "--sparsity", "0.5"], "exactly one of --threshold and --sparsity"),
        (["--sparsity", "1.5"], "Received: sparsity=1.5"),
        (["--sparsity", "0.5", "--scope", "model"], "Received: scope='model'"),
        (["--sparsity", "0.5", "--layers", "hidden["], "not a valid regular expression"),
    ],
)
def test_sparsify_bad_options(task, args, expected):
    tmp, path, _, _ = task
    result = cli(["sparsify", path, "-o", tmp / "never.keras", *args])
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert not (tmp / "never.keras").exists()


def test_ftrl_l1_gives_exact_zeros_where_adam_l1_does_not():
    from reuse.training.finetune import finetune

    x, y = classification_data(n=60, n_in=8, n_classes=3, seed=2)
    zeros = {}
    for label, kwargs in (
        ("ftrl", {"optimizer": "ftrl:l1=0.05", "lr": 0.1}),
        ("adam", {"optimizer": "adam", "l1": 0.05, "lr": 0.01}),
    ):
        result = finetune(
            mlp(n_in=8, hidden=2, units=12, n_out=4, seed=1), (x, y), epochs=5, seed=0, **kwargs
        )
        kernel = np.array(result.model.get_layer(result.transfer.head[-1]).kernel)
        zeros[label] = np.count_nonzero(kernel == 0)
    assert zeros["ftrl"] > 0
    assert zeros["adam"] == 0
