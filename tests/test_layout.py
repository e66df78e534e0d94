"""The package reads as the pipeline: each stage folder imports only its own stage and the stages below."""

import ast
from pathlib import Path

import pytest

import colorize_cli

PACKAGE = Path(colorize_cli.__file__).parent

# Data-flow order; a stage may import any stage with a lower rank. prep and evaluate are side by side
# (neither needs the other); train reads prep's data format and validates with evaluate's plots.
STAGE_RANK = {
    "colour": 0,
    "photos": 1,
    "models": 2,
    "colorize": 3,
    "prep": 4,
    "evaluate": 4,
    "train": 5,
    "commands": 6,
    "cli": 7,
    "__main__": 8,
}
# Small helpers at the top that any stage may use; they import no stage themselves.
SHARED_HELPERS = {"device", "progress", "stop_signals"}


def _stage_of(module: str) -> str:
    """'colorize_cli.colour.lab' -> 'colour'; '__init__' is the public API, above everything."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the layout test reads absolute ones"
            if node.module == "colorize_cli":
                # `from colorize_cli import x`: x is a module or a public name of the root
                found += [f"colorize_cli.{alias.name}" for alias in node.names]
            elif node.module:
                found.append(node.module)
    return [name for name in found if name.split(".")[0] == "colorize_cli"]


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        own = _stage_of(module)
        if own == "__init__" or module == "colorize_cli.__init__":
            continue
        for imported in _imports(path):
            target = _stage_of(imported)
            if target == "__version__" or target == own:
                continue
            if own in SHARED_HELPERS:
                bad.append(f"{module} is a shared helper but imports {imported}")
            elif target in SHARED_HELPERS:
                continue
            elif target not in STAGE_RANK or STAGE_RANK[target] >= STAGE_RANK[own]:
                bad.append(f"{module} ({own}) imports {imported} ({target})")
    return bad


def test_every_module_belongs_to_a_known_stage_or_helper():
    top = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    top -= {"__init__", "__pycache__"}
    assert top <= set(STAGE_RANK) | SHARED_HELPERS, top - set(STAGE_RANK) - SHARED_HELPERS


def test_stages_import_only_downwards():
    assert _violations() == []


def test_each_stage_says_what_it_is():
    for stage in STAGE_RANK:
        init = PACKAGE / stage / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc.splitlines()) >= 2, f"{stage}/__init__.py needs a two-line docstring"


def test_public_api_names_stay_importable_from_the_package():
    for name in colorize_cli.__all__:
        assert getattr(colorize_cli, name) is not None


def test_pyproject_lists_every_package_folder_and_the_weights():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package itself runs on 3.10

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"colorize_cli"} | {f"colorize_cli.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    assert listed == folders | {"colorize_cli.weights"}
