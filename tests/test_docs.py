"""Every Python block of the README and of the how-to pages runs as written; every command line
of the README parses with the real parser (each option and value it shows exists)."""

import os
import re
import shlex
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PAGES = ["README.md", "docs/own-data.md", "docs/tonic.md", "docs/models.md", "docs/nir.md",
         pytest.param("docs/lava.md", marks=pytest.mark.lava)]


def blocks(path, lang):
    text = open(os.path.join(REPO, path)).read()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_every_page_is_linked_from_the_docs_index():
    index = open(os.path.join(REPO, "docs", "README.md")).read()
    for page in ("own-data.md", "tonic.md", "models.md", "lava.md", "loihi.md", "nir.md", "pruning.md"):
        assert f"({page})" in index, page


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, tmp_path, data_root, digits):
    code = "\n".join(blocks(page, "python"))
    assert code.strip(), f"{page} has no python block"
    if page in ("docs/tonic.md", "README.md"):       # tonic's SHD class reads tiny files in the real format
        import numpy as np
        from test_tonic_datasets import make_hsd

        make_hsd(tmp_path / "data", np.random.default_rng(0), n=24)
    env = {**os.environ, "SPIKELFP_DATA": data_root, "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f"{page}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    if page == "docs/nir.md":
        assert r.stdout.split() == ["True", "0.01", "True"], r.stdout


def _command_lines():
    lines = []
    for block in blocks("README.md", "bash"):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("spikelfp "):
                lines.append(line)
    return lines


def test_readme_command_lines_parse():
    from spikelfp.cli import build_parser

    lines = _command_lines()
    assert len(lines) >= 15
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"README line does not parse ({e.code}): {line}")
