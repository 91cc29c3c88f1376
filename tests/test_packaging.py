"""The wheel carries every data file the package reads (CI also builds and runs it non-editable)."""

import fnmatch
from pathlib import Path

import tomllib

ROOT = Path(__file__).parent.parent


def test_every_data_file_is_declared_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["igos"]
    data = ROOT / "src" / "igos" / "data"
    files = [p.relative_to(data.parent).as_posix() for p in data.iterdir() if p.is_file()]
    assert files, "no data files found"
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"not in the wheel: {missing}; add them to [tool.setuptools.package-data]"
