"""benchmarks/synonym_table_effect.py: how many words' TextFooler candidates two tables differ in."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    path = ROOT / "benchmarks" / "synonym_table_effect.py"
    spec = importlib.util.spec_from_file_location("synonym_table_effect", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_candidate_sets_are_the_neighbours_at_cosine_half_and_their_differences_counted(
    tmp_path, monkeypatch
):
    effect = _module()
    # four words in 2-d: 0 and 1 close (cos 0.8), 2 orthogonal to 0, 3 = −0 (cos −1)
    base = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    # each word's neighbours, the word itself first (as rsmi resources stores them)
    nn = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 0, 3], [3, 2, 1, 0]])
    moved = base.copy()
    moved[2] = [0.6, 0.8]  # in table B word 2 comes within cos 0.6 of word 0 and 0.96 of word 1
    tables = {str(tmp_path / name): SimpleNamespace(embedding_arrays=lambda m=matrix: (m, [], nn))
              for name, matrix in (("a", base), ("b", moved))}
    monkeypatch.setattr(effect.Resources, "load", staticmethod(lambda root: tables[str(root)]))
    got = effect.candidate_sets_differ(tmp_path / "a", tmp_path / "b")
    # A: {0: {1}, 1: {0, 2}, 2: {1}, 3: {}}; B: {0: {1, 2}, 1: {0, 2}, 2: {1, 0}, 3: {}}
    assert got["words_with_candidates"] == 3 and got["words_differing"] == 2
    assert got["share_differing"] == pytest.approx(2 / 3)
    assert got["mean_jaccard_of_differing"] == pytest.approx(0.5)
