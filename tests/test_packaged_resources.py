"""The wheel ships the example configuration and the alert rules, readable through deploy.resources."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy import resources

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {"/".join(resources.EXAMPLE_CONFIG): resources.example_config,
           "/".join(resources.ALERT_RULES): resources.alert_rules}

pytestmark = pytest.mark.slow(40)  # builds the wheel


def test_resources_are_the_files_in_the_checkout() -> None:
    for relative, read in SHIPPED.items():
        assert read() == (ROOT / "deploy" / relative).read_text()
    assert "tenants:" in resources.example_config()
    assert "groups:" in resources.alert_rules()


def test_built_wheel_ships_them_and_an_installed_copy_reads_them(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ behind, and a stale build/lib in the checkout could
    # still hold a file that package-data no longer ships.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels),
                            str(source)], capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("edusync-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"deploy/{relative}" for relative in SHIPPED} | {"deploy/resources.py"} <= names

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    # -S: no site-packages, so the checkout's editable install cannot answer instead of the copy.
    probe = ("import json, deploy.resources as r; "
             "print(json.dumps({'file': r.__file__, 'example': r.example_config(), 'rules': r.alert_rules()}))")
    run = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env={"PYTHONPATH": str(site)}, check=False)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert Path(found["file"]).is_relative_to(site)
    assert found["example"] == resources.example_config()
    assert found["rules"] == resources.alert_rules()
