"""The environment is pinned in one place and mirrored exactly; importing nclib does nothing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines():
    return [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]


def test_every_requirement_is_pinned_exactly():
    for line in requirement_lines():
        assert "==" in line, f"unpinned requirement: {line}"
    assert "torch==2.13.0" in requirement_lines()
    assert any(l.startswith("jupyter-book==1.") for l in requirement_lines())
    assert not any(l.startswith("tensorflow") for l in requirement_lines())


def test_environment_yml_mirrors_requirements():
    pip_section = []
    inside = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.strip() == "- pip:":
            inside = True
            continue
        if inside and line.strip().startswith("- "):
            pip_section.append(line.strip()[2:])
    assert [p for p in pip_section if p != "-e ."] == requirement_lines()


def test_config_excludes_virtualenv_build_and_data():
    config = (ROOT / "_config.yml").read_text()
    for folder in (".venv", "_build", "data"):
        assert f"{folder}/*" in config or f"{folder}/**" in config, folder
    assert "execute_notebooks: cache" in config


def test_importing_nclib_has_no_side_effects():
    code = (
        "import os, sys, random, numpy as np\n"
        "env = dict(os.environ); state = np.random.get_state()[1].copy(); r = random.getstate()\n"
        "import nclib, nclib.scores, nclib.evaluate, nclib.cache, nclib.data.fetch, nclib.config\n"
        "assert dict(os.environ) == env, set(os.environ) ^ set(env)\n"
        "assert (np.random.get_state()[1] == state).all() and random.getstate() == r\n"
        "heavy = [m for m in ('torch', 'keras', 'librosa', 'matplotlib', 'numba') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS", "NUMBA"))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
