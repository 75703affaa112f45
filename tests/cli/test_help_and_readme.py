"""Every command has help text with an example, answers --help without TensorFlow, and is in the README."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, cli


def _commands():
    from reuse.cli import app

    return [c.name for c in app.registered_commands]


@pytest.mark.parametrize("name", _commands())
def test_command_has_help_and_example(name):
    result = cli([name, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert re.search(
        rf"^\s+reuse {re.escape(name)}\b|\|\s*reuse {re.escape(name)}\b", result.stdout, re.M
    ), result.stdout


@pytest.mark.parametrize("name", _commands())
def test_command_is_documented_in_readme(name):
    readme = (ROOT / "README.md").read_text()
    assert f"reuse {name}" in readme, f"README.md has no example of `reuse {name}`"


def test_readme_opens_with_the_two_commands():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()[:12]]
    assert any(line.startswith("make demo") for line in lines)
    assert any(line.startswith("make test") for line in lines)


@pytest.mark.slow
def test_every_help_answers_without_tensorflow(tmp_path):
    from tests.helpers import shell

    for name in _commands():
        result = shell(f"python -X importtime -m reuse {name} --help", tmp_path)
        assert result.returncode == 0, result.stderr
        imported = {
            line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line
        }
        heavy = imported & {"tensorflow", "keras", "torch", "matplotlib", "h5py"}
        assert not heavy, f"`reuse {name} --help` imports {heavy}"


# --- The README and the documentation site -------------------------------------------------

DOCS = sorted((ROOT / "docs").glob("*.md"))


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(
        r"(?:^|\n\n)((?:    .*\n)+)", text
    )


def _command_lines(text: str) -> list[list[str]]:
    """Each `reuse ...` invocation in the code blocks of a page, as argv lists (pipes split)."""
    import shlex

    commands = []
    for block in _code_blocks(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ").split("  # ")[0]
            if not line.startswith("reuse ") or "..." in line or " [" in line:
                continue
            for part in line.split("|"):
                part = part.strip()
                if part.startswith("reuse ") and not re.search(r"[<>]|\bMODEL\b|\bDATA\b", part):
                    try:
                        commands.append(shlex.split(part)[1:])
                    except ValueError:
                        continue
    return commands


def test_readme_is_short_and_links_the_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 350
    for page in re.findall(r"\]\(docs/([\w.-]+\.md)", text):
        assert (ROOT / "docs" / page).exists(), page


@pytest.mark.parametrize("page", ["README.md"] + [f"docs/{p.name}" for p in DOCS])
def test_every_documented_command_line_parses(page):
    """Each `reuse ...` line of the README and the docs names a command and options it has."""
    import typer.main

    from reuse.cli import app, normalize_argv

    group = typer.main.get_command(app)
    for argv in _command_lines((ROOT / page).read_text()):
        argv = normalize_argv(argv)
        while argv and argv[0] in ("-q", "--quiet"):
            argv = argv[1:]
        if not argv or argv[0].startswith("-"):
            continue
        assert argv[0] in group.commands, f"{page}: unknown command in `reuse {' '.join(argv)}`"
        command = group.commands[argv[0]]
        try:
            command.make_context(argv[0], argv[1:], resilient_parsing=False)
        except Exception as err:  # noqa: BLE001 - the message names the line
            raise AssertionError(f"{page}: `reuse {' '.join(argv)}` does not parse: {err}") from err


@pytest.mark.parametrize("page", ["README.md"] + [f"docs/{p.name}" for p in DOCS])
def test_docs_hold_no_machine_paths(page):
    text = (ROOT / page).read_text()
    assert not re.search(r"(/tmp/|/work/|/home/|/Users/|C:\\\\)", text), page


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [p.name for p in DOCS if f" {p.name}" not in nav]
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"


def test_the_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index.html").exists()


def test_readme_pandas_snippet_reads_a_real_cache(tmp_path, frozen_path, data_path, monkeypatch):
    """The README's h5py/pandas snippet, run as written on a cache that cache_features wrote."""
    pytest.importorskip("pandas")
    import reuse

    (tmp_path / "demo").mkdir()
    model = reuse.load_model(frozen_path)
    reuse.cache_features(model, reuse.load_data(data_path), tmp_path / "demo" / "feats.h5")
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(import h5py\n.*?)```", text, re.S).group(1)
    tap = reuse.open_cache(tmp_path / "demo" / "feats.h5").taps[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(snippet.replace("hidden2", tap), scope)  # noqa: S102 - the README's own code
    frame = scope["frame"]
    assert {"label", "row"} <= set(frame.columns)
    assert len(frame) == len(reuse.load_data(data_path).y)


# --- Help that reads well ----------------------------------------------------------------------


def _help(name: str | None, columns: int) -> str:
    from tests.helpers import shell

    result = shell(
        f"python -m reuse {name or ''} --help", ROOT, env_extra={"COLUMNS": str(columns)}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_placeholders_follow_one_convention():
    for name in [*_commands(), None]:
        text = cli([name, "--help"] if name else ["--help"]).stdout
        assert not re.search(r"<(str|int|float|path|list\[)", text), (name, text)
        assert not re.search(r"^\s+(-\w, )?--[\w-]+ (FILE|KEY|COLUMN)\b", text, re.M), name
        assert "MODEL <" not in text


@pytest.mark.parametrize("columns", [80, 100])
def test_help_wraps_between_words(columns):
    text = _help("finetune", columns)
    assert "piecewise:boundaries=500,values=0.01;0.001" in text
    assert "--checkpoint-\n" not in text and "--checkpoint-dir" in text
    assert "iecewise" not in text.replace("piecewise", "")  # was broken as "p" / "iecewise"


def test_top_level_help_has_whole_summaries_and_examples():
    text = _help(None, 80)
    commands = text.split("Commands:")[1].split("Examples:")[0]
    assert "..." not in commands
    assert "Mark layers non-trainable and write a new model" in commands
    assert "Examples:" in text and "reuse inspect models/digits_0to4.keras" in text


def test_seed_and_batch_size_say_what_they_do_per_command():
    evaluate = cli(["evaluate", "--help"]).stdout
    finetune = cli(["finetune", "--help"]).stdout

    def seed_text(text):
        return " ".join(text.split("  --seed N")[1].split("\n  -")[0].split())

    assert "initialization" not in seed_text(evaluate) and "--tta" in seed_text(evaluate)
    assert "initialization" in seed_text(finetune)
    for name in ("evaluate", "predict"):
        line = re.search(r"--batch-size N\s+(\S.*)", cli([name, "--help"]).stdout).group(1)
        assert line.startswith("Rows per forward pass"), line


def test_help_matches_the_docs_on_max_norm_and_loss():
    text = " ".join(cli(["finetune", "--help"]).stdout.split())
    assert "every trained kernel" in text  # --max-norm, as training.transfer applies it
    for loss in ("log_cosh", "msle", "huber"):
        assert loss in text


def test_version_short_and_long():
    from reuse._version import __version__

    assert cli(["-V"]).stdout.strip() == f"reuse {__version__}"
    assert cli(["--version"]).stdout.strip() == f"reuse {__version__}"


def test_shell_completion_script_and_answers():
    from tests.helpers import shell

    # `; true` keeps bash as the parent process: Typer detects the shell from it.
    script = shell("python -m reuse --show-completion; true", ROOT)
    assert script.returncode == 0 and "_REUSE_COMPLETE" in script.stdout, script.stderr
    answer = shell(
        "reuse",
        ROOT,
        env_extra={
            "_REUSE_COMPLETE": "complete_bash",
            "COMP_WORDS": "reuse fine",
            "COMP_CWORD": "1",
        },
    )
    assert "finetune" in answer.stdout, answer.stderr


# --- Tables that fit 80 columns --------------------------------------------------------------


def test_stage_table_fits_80_columns(monkeypatch):
    import io

    from rich.console import Console

    from reuse.cli import finetune_cmd
    from reuse.core import report

    buffer = io.StringIO()
    monkeypatch.setattr(report, "console", lambda: Console(file=buffer, width=80))
    names = ["hidden5", "hidden4", "hidden3", "hidden2", "hidden1"]
    rows = [
        {
            "stage": i,
            "trainable": ", ".join(names[: 2 * i - (i == 3)]) if i else "head only",
            "tap": "input" if i == 3 else f"hidden{5 - 2 * i}",
            "epochs": 10,
            "best": 0.5,
            "monitor": "val_loss",
            "lr": 0.001 / 2**i,
            "seconds": 123.4,
            "kept": True,
        }
        for i in range(4)
    ]
    finetune_cmd._render_stage_table(rows)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum("hidden5..hidden1" in line for line in lines) == 1  # one row, not folded


def test_cache_table_fits_80_columns_without_breaking_headers(monkeypatch):
    import io

    from rich.console import Console

    from reuse.cli import output
    from reuse.core import report

    buffer = io.StringIO()
    monkeypatch.setattr(report, "stdout_console", lambda **kw: Console(file=buffer, width=80))
    columns = ["dataset", "tap", "shape", "dtype", "chunks", "compression", "stored_bytes"]
    rows = [
        {
            "dataset": f"features/hidden{i}",
            "tap": f"hidden{i}",
            "shape": [60000, 100],
            "dtype": "float32",
            "chunks": [256, 100],
            "compression": "gzip",
            "stored_bytes": 24_000_000,
        }
        for i in (1, 2)
    ]
    output.render_rows(rows, columns, "table", title="feats.h5", pad_edge=False)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "dataset" in line)
    assert all(word in header for word in ("dataset", "shape", "chunks", "codec", "bytes"))
