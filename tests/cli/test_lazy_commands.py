"""The command group loads command modules lazily: ``medgap --version`` imports none of their heavy
dependencies, ``--help`` still lists every command, and usage errors stay exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from medgap import __version__
from medgap.cli import _COMMANDS, _workers_asked, app

runner = CliRunner()

HEAVY = ("numpy", "pandas", "numba", "scipy", "matplotlib", "torch", "medgap.quality", "medgap.cli.quality")


def test_version_imports_no_command_module():
    """Before: medgap.cli imported every command module and with them numba, scipy, pandas and matplotlib
    (3.4 to 4.7 s for `python -m medgap --version` here; now about 0.2 s)."""
    code = ("import sys, json\nfrom medgap.cli import main\nsys.argv = ['medgap', '--version']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[0] == f"medgap {__version__}"
    code, loaded = json.loads(run.stdout.splitlines()[-1])
    assert code in (0, None) and loaded == []


def _main_in_subprocess(*argv: str) -> tuple[str, int, list[str]]:
    code = ("import sys, json\nfrom medgap.cli import main\n"
            f"sys.argv = ['medgap', *{list(argv)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "200"})
    *out, last = run.stdout.splitlines()
    code, loaded = json.loads(last)
    return "\n".join(out), code, loaded


def test_help_lists_every_command_without_importing_them():
    """Before: listing the commands imported every command module (2.7 s of CPU for `medgap --help`)."""
    out, code, loaded = _main_in_subprocess("--help")
    assert code in (0, None) and loaded == []
    for name, (_, summary) in _COMMANDS.items():
        assert f" {name} " in out and summary[:40] in out, name


def test_each_command_loads_and_keeps_its_summary():
    """`medgap NAME --help` imports the command's module; the listing's line is the same before and after."""
    for name, (module, summary) in _COMMANDS.items():
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and "Usage:" in sub.output, name
        assert module in sys.modules, name
    import typer.main

    group = typer.main.get_command(app)
    with group.make_context("medgap", ["--help"], resilient_parsing=True) as ctx:
        for name, (_, summary) in _COMMANDS.items():
            assert group.load_command(ctx, name).short_help == summary, name
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert [name for name in _COMMANDS if f" {name} " in result.output] == list(_COMMANDS)


def test_unknown_command_or_option_is_a_usage_error():
    """Before: typer's own copy of click raised errors that medgap's group took for a crash (exit 3)."""
    result = runner.invoke(app, ["nosuch"])
    assert result.exit_code == 2 and "No such command" in result.output
    result = runner.invoke(app, ["quality", "--nosuch"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_the_command_line_needs_no_standalone_click():
    """typer 0.29 vendors click and does not install it; `import click` in cli/ broke `medgap` on a fresh
    `pip install -e .` (click had come from the train extra's dependencies here). Blocked like a missing package."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'click' or name.startswith('click.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'click'\")\n"
        "sys.meta_path.insert(0, Block())\n"
        "from medgap.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['quality', '--bogus'])\n"
        "print(r.exit_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"  # a usage error, not a crash


@pytest.mark.parametrize(("args", "workers"), [
    (["--workers", "4", "data/"], 4), (["data/", "-j", "2"], 2), (["--workers=3"], 3), (["-j2"], 2),
    (["data/"], 0), (["--workers", "many"], 0), (["--workers"], 0), (["--", "--workers", "2"], 0),
    (["--workers", "2", "--help"], 0),  # help only: no workers to start
])
def test_workers_asked_reads_the_command_line(args, workers):
    assert _workers_asked(args) == workers


def test_quality_with_workers_starts_the_fork_server_before_importing_the_command():
    """The fork server imports the scoring code (about 1.2 s) on another core while this process imports the
    command, instead of after (issue 15: 'the parent must not be the bottleneck')."""
    code = ("import sys, json\nimport medgap.scoring.engine as engine\ncalls = []\n"
            "engine.prestart = lambda n: calls.append([n, 'medgap.cli.quality' in sys.modules])\n"
            "from medgap.cli import main\n"
            "sys.argv = ['medgap', 'quality', '--workers', '3', '/nonexistent/folder']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print(json.dumps([code, calls]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    code, calls = json.loads(run.stdout.splitlines()[-1])
    assert code == 2  # the missing folder is still reported as before
    assert calls[0] == [3, False]  # first call: before the command module was imported
