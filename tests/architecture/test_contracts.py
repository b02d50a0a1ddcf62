"""The dependency contracts of pyproject.toml hold on the code, and break on a deliberate
violation of each kind (run on a copy of the tree, with lint-imports as `make lint` runs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": f"{tree}:{tree / 'generated'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for name in ("service", "tests", "generated"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_contracts_hold(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


VIOLATIONS = [
    (
        "service/invoices/service.py",
        "from service.transactions import repository as _r",
        "A resource uses another only through that resource's service module",
    ),
    ("service/kit/listing.py", "import grpc", "The kit imports no edge"),
    (
        "service/invoices/rules.py",
        "from service.invoices import repository as _r",
        "Each resource is layered",
    ),
    (
        "service/allocations/service.py",
        "from invoicing.v1 import invoices_pb2 as _pb",
        "Only edges (servicers, converters, the pipeline, the gateway) import gRPC",
    ),
    (
        "service/gateway/remote.py",
        "from service.invoices import service as _s",
        "The kit, the edge, the gateway and the worker runner know no resource",
    ),
]


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS)
def test_a_deliberate_violation_breaks_its_contract(
    tree: Path, path: str, line: str, contract: str
) -> None:
    target = tree / path
    original = target.read_text()
    target.write_text(f"{original}\n{line}  # deliberate violation\n")
    try:
        result = _lint(tree)
    finally:
        target.write_text(original)
    assert result.returncode == 1, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), result.stdout
