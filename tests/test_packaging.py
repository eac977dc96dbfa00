"""nclib installs as a package: the wheel carries its data and declares its dependencies,
and the core works from a fresh virtual environment that has only the core dependencies.

The wheel is built from a copy of the sources (so the checkout gets no ``build/`` folder).
The installation test downloads numpy, scipy, pandas and scikit-learn from the package
registry (pip's cache is kept, so later runs are quick); when the registry cannot be
reached it skips and says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ("numpy", "scipy", "pandas", "scikit-learn", "threadpoolctl")
EXTRAS = ("models", "audio", "book", "dask", "test", "all")
# What pip prints when the package registry cannot be reached.
OFFLINE_MARKERS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                   "No matching distribution found", "ProxyError", "ConnectTimeoutError")


def _clean_env(**extra) -> dict:
    """The environment for a child process that must not see the checkout or .venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NCLIB_DATA", "PYTHONSTARTUP"}
           and not k.startswith(("KERAS", "NUMBA"))}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build nclib's wheel from a copy of the sources (pyproject.toml, README.md, nclib/)."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "nclib", source / "nclib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(dist), str(source)],
                   check=True, cwd=base, env=_clean_env())
    wheels = sorted(dist.glob("nclib-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode("utf-8"))


def test_the_wheel_carries_the_registry_and_the_typing_marker(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "nclib/data/registry.csv" in names
        assert "nclib/py.typed" in names
        packaged = archive.read("nclib/data/registry.csv")
    assert packaged == (ROOT / "nclib" / "data" / "registry.csv").read_bytes()
    assert not any(n.startswith(("tests/", "book/", "data/")) for n in names), "only the package is shipped"


def test_the_wheel_declares_core_ranges_and_extras(wheel):
    metadata = _metadata(wheel)
    requires = metadata.get_all("Requires-Dist") or []
    core = {r.split(";")[0].strip() for r in requires if "extra ==" not in r}
    for package in CORE:
        assert any(r.startswith(package + ">=") for r in core), (package, core)
    assert not any("==" in r for r in core), "the core declares ranges; exact pins live in requirements.txt"
    assert not any(r.startswith(("torch", "keras", "librosa", "matplotlib", "jupyter")) for r in core), core
    assert set(EXTRAS) <= set(metadata.get_all("Provides-Extra") or [])
    models = [r for r in requires if 'extra == "models"' in r]
    assert any(r.startswith("torch>=") for r in models) and any(r.startswith("keras>=") for r in models)
    # The weight-only packages pull in torchvision & co.: never a dependency (see requirements-weights.txt).
    weights = [line.split("==")[0].lower() for line in (ROOT / "requirements-weights.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert weights and not any(r.lower().startswith(tuple(weights)) for r in requires)
    assert any(r.startswith("jupyter-book") and "<2" in r for r in requires if 'extra == "book"' in r)


CORE_SCRIPT = textwrap.dedent("""
    import importlib.util, json, math, site, sys
    from pathlib import Path
    import numpy as np
    import pandas as pd
    import nclib
    import nclib.evaluate
    from nclib import config
    from nclib.data.registry import registry_entry, registry_path

    out = {"file": nclib.__file__}
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    features = {f"m{i}": rng.normal(size=(60, 8)) + (i + 1) * np.eye(3, 8)[labels] for i in range(4)}
    probs = {m: rng.dirichlet(np.ones(5), size=60) for m in features}

    # Every registered score: on features, on feature pools, and LEEP/NCE on source probabilities.
    table = nclib.compute_scores(features, labels, source_probs=probs)
    assert set(table["score"]) == set(nclib.REGISTRY), set(nclib.REGISTRY) ^ set(table["score"])
    assert np.isfinite(table["value"]).all(), table[~np.isfinite(table["value"])]
    for name, info in nclib.REGISTRY.items():  # and each function called directly
        if info.needs == "features":
            assert math.isfinite(info.function(features["m0"], labels, **info.options)), name
        elif info.needs == "source_probs":
            assert math.isfinite(info.function(probs["m0"], labels, **info.options)), name
        else:
            assert np.isfinite(info.function(list(features.values()), labels, **info.options)).all(), name
    performance = {m: 0.5 + 0.1 * i for i, m in enumerate(features)}
    evaluation = nclib.evaluate_scores(table, performance)
    assert set(evaluation["score"]) == set(nclib.REGISTRY)
    assert {"spearman", "kendall", "weighted_tau"} <= set(evaluation["measure"])
    out["scores"] = sorted(set(table["score"]))
    from nclib import uncertainty
    assert uncertainty.exact_permutation_p_value([1, 2, 3, 4, 5, 6], [.1, .2, .3, .4, .5, .6], "kendall") == 1 / 720
    assert 0 < uncertainty.pearson_p_value(0.93, 6) < 0.01

    # Package data and the data folder of an installed package.
    assert registry_entry("cifar10")["algorithm"] == "md5"
    out["registry"] = str(registry_path())
    out["checkout"] = config.in_source_checkout()
    out["data_dir"] = str(config.data_dir())
    out["site"] = [str(Path(p).resolve()) for p in site.getsitepackages()]

    out["heavy_imported"] = [m for m in ("torch", "librosa", "keras", "matplotlib") if m in sys.modules]
    out["heavy_installed"] = [m for m in ("torch", "librosa") if importlib.util.find_spec(m) is not None]
    print("RESULT " + json.dumps(out))
""")


def test_the_core_works_from_a_fresh_environment_with_only_core_dependencies(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = subprocess.run([str(python), "-m", "pip", "install", "--prefer-binary", "--quiet", str(wheel)],
                             capture_output=True, text=True, cwd=tmp_path, env=_clean_env())
    if install.returncode != 0:
        output = install.stdout + install.stderr
        if any(marker in output for marker in OFFLINE_MARKERS):
            pytest.skip("the package registry cannot be reached: " + output.strip().splitlines()[-1])
        raise AssertionError(output)

    work = tmp_path / "elsewhere"  # run outside the checkout, so nothing is imported from it
    work.mkdir()
    script = work / "core.py"
    script.write_text(CORE_SCRIPT)
    xdg = tmp_path / "xdg"
    result = subprocess.run([str(python), str(script)], capture_output=True, text=True, cwd=work,
                            env=_clean_env(XDG_CACHE_HOME=str(xdg)))
    assert result.returncode == 0, result.stdout + result.stderr
    import json
    out = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])

    site_packages = [Path(p) for p in out["site"]]
    installed = Path(out["file"]).resolve()
    assert any(installed.is_relative_to(p) for p in site_packages), (installed, site_packages)
    assert not installed.is_relative_to(ROOT)
    assert Path(out["registry"]).resolve().is_relative_to(installed.parent)
    assert out["checkout"] is False
    data = Path(out["data_dir"])
    assert not any(data.resolve().is_relative_to(p) for p in site_packages), data
    if sys.platform.startswith("linux"):
        assert data == xdg / "nclib"  # $XDG_CACHE_HOME/nclib, as pooch.os_cache("nclib")
    assert out["heavy_imported"] == [], out["heavy_imported"]
    assert out["heavy_installed"] == [], out["heavy_installed"]
