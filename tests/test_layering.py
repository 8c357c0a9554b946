"""The architecture's rules, checked on the source: which package may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_CODE = {"tests", "testkit"}  # the product never needs the tests' stand-ins


def imported(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str, forbidden: set[str]) -> list[str]:
    """`file: module` for each forbidden import in a package's Python files."""
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return [
        f"{f.relative_to(ROOT)}: {name}" for f in files for name in sorted(imported(f) & forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "earshot",
            {"rasa", "rasa_sdk", "telegram", "pywa", "pywa_async", "bot", "whatsapp", "messenger"}
            | {"actions", "xdm"}
            | TEST_CODE,
        ),
        # The gateway is every channel's: no channel library, no web framework in it.
        (
            "earshot/gateway",
            {
                *("rasa", "rasa_sdk", "telegram", "bot", "actions", "xdm"),
                *("starlette", "pywa", "oauthlib", *TEST_CODE),
            },
        ),
        ("bot", {"actions", "rasa", "rasa_sdk", "whatsapp", "messenger", "xdm", *TEST_CODE}),
        (
            "xdm",
            {"actions", "bot", "telegram", "rasa", "rasa_sdk", "whatsapp", "messenger", *TEST_CODE},
        ),
        (
            "whatsapp",
            {"actions", "bot", "telegram", "rasa", "rasa_sdk", "messenger", "xdm", *TEST_CODE},
        ),
        (
            "messenger",
            {
                "actions",
                "bot",
                "telegram",
                "rasa",
                "rasa_sdk",
                "whatsapp",
                "xdm",
                "pywa",
                *TEST_CODE,
            },
        ),
        ("actions", {"bot", "telegram", *TEST_CODE}),
        ("bench", {"tests"}),
        ("scripts", {"tests"}),
        ("testkit", {"tests"}),
    ],
)
def test_package_imports_respect_the_layers(package: str, forbidden: set[str]) -> None:
    assert violations(package, forbidden) == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from rasa.core import x\n    import telegram.ext\n")
    assert imported(sample) == {"rasa", "telegram"}


def test_every_rasa_patch_names_a_test_that_exists() -> None:
    source = (ROOT / "rasa_project/addons/patches.py").read_text(encoding="utf-8")
    assign = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "PATCHES" for t in node.targets)
    )
    patches = ast.literal_eval(assign.value)
    assert len(patches) == 8
    for target, replaces, proof in patches:
        assert target.startswith("rasa.") and replaces
        file, test = proof.split("::")
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test in defined, f"{target}: {proof} does not exist"


# The front ends call the feature packages (earshot/feedback, earshot/privacy, ...), which
# own their queries: from SQLAlchemy they take sessions and error types, never a query.
FRONT_ENDS = [
    "earshot/web",
    "earshot/cli",
    "earshot/gateway",
    "earshot/webhooks",
    "bot",
    "whatsapp",
    "messenger",
    "xdm",
    "actions",
]
SESSION_ONLY = {"sqlalchemy.orm": {"Session", "sessionmaker"}, "sqlalchemy.exc": None}


def sql_imports(path: Path) -> list[str]:
    """SQLAlchemy names a file imports beyond sessions and exception types."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            module = node.module or ""
            allowed = SESSION_ONLY.get(module, set())
            found += [
                f"{module}.{a.name}"
                for a in node.names
                if allowed is not None and a.name not in allowed
            ]
    return found


@pytest.mark.parametrize("package", FRONT_ENDS)
def test_front_ends_leave_sql_to_the_features(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    assert [f"{f.relative_to(ROOT)}: {name}" for f in files for name in sql_imports(f)] == []


def test_the_sql_check_sees_query_builders(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "from sqlalchemy import select\nfrom sqlalchemy.orm import Session, aliased\n"
        "from sqlalchemy.exc import DBAPIError\ndef f():\n    import sqlalchemy\n"
    )
    assert sorted(sql_imports(sample)) == [
        "sqlalchemy",
        "sqlalchemy.orm.aliased",
        "sqlalchemy.select",
    ]
