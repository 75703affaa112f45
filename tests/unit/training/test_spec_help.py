"""The help texts of the --head, --optimizer and --schedule grammars cover every name and their
examples parse; the spec modules import no Keras."""

from __future__ import annotations

import os
import subprocess
import sys

from reuse.surgery.layer_spec import GRAMMAR_HELP, parse_layer_spec
from reuse.training.optimizers import OPTIMIZER_HELP, optimizer_factory
from reuse.training.schedules import SCHEDULE_HELP, SCHEDULE_NAMES, parse_schedule
from tests.helpers import ROOT


def test_help_constants_cover_every_name():
    for name in SCHEDULE_NAMES:
        assert f"\n  {name}" in SCHEDULE_HELP
    for word in (
        "dense:UNITS[:ACTIVATION]",
        "dropout:RATE",
        "batchnorm",
        "alphadropout:RATE",
        "gaussiannoise:STD",
        "flatten",
        "gap",
        "activation:NAME",
        "leaky_relu",
        "selu",
    ):
        assert word in GRAMMAR_HELP
    # the examples in the help text parse
    parse_layer_spec(GRAMMAR_HELP.rsplit("Example: ", 1)[1])
    for example in (
        "exponential:decay_rate=0.1,decay_epochs=10",
        "cosine:warmup_epochs=1",
        "piecewise:boundaries=500;1000,values=0.01;0.005;0.001",
        "performance:factor=0.2,patience=3",
    ):
        assert example in SCHEDULE_HELP
        parse_schedule(example, lr=0.1, steps_per_epoch=100, epochs=20)
    for example in (
        "momentum:momentum=0.95",
        "adam:beta2=0.99,clipnorm=1",
        "ftrl:l1=0.01,l2=0.001",
    ):
        assert example in OPTIMIZER_HELP
        optimizer_factory(example)


def test_spec_modules_do_not_import_keras():
    code = (
        "import sys; import reuse.surgery.heads, reuse.training.optimizers, reuse.training.schedules; "
        "print(any(m in sys.modules for m in ('keras', 'tensorflow')))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.stdout.strip() == "False", out.stderr
