"""Counter-fitted word vectors (Mrkšić et al., NAACL 2016) from GloVe and WordNet.

TextFooler-style attacks swap a word for its nearest neighbours in a counter-fitted space,
where synonyms are close and antonyms far apart. The published vectors are not packaged; plain
GloVe places antonyms side by side (good -> bad). We counter-fit GloVe 6B-50d with WordNet
synonym and antonym pairs, minimising the paper's cost

    C(V') = sum_{(u,w) in A} tau(delta - d(u',w'))          antonym repel (AR)
          + sum_{(u,w) in S} tau(d(u',w') - gamma)          synonym attract (SA)
          + sum_i sum_{j in N(i)} tau(d(v'_i,v'_j) - d(v_i,v_j))   vector space preservation (VSP)

with d = 1 - cosine, tau(x) = max(0, x), delta = 1.0, gamma = 0.0, N(i) = the neighbours of
word i within distance rho = 0.2 in the original space, by the authors' SGD: each iteration
moves every constrained word by the mean of its per-pair updates (scaled by k1, k2, k3 = 0.1),
then renormalises, for 20 iterations. The loops over pairs are vectorised with torch.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsmi.errors import ResourceError

logger = logging.getLogger(__name__)

WORDLIKE = re.compile(r"^[a-z](?:[a-z'\-]*[a-z])?$")

# Antonym pairs every attack reader knows; reported one by one before/after counter-fitting.
NAMED_ANTONYMS: tuple[tuple[str, str], ...] = (
    ("good", "bad"), ("love", "hate"), ("happy", "sad"), ("best", "worst"), ("hot", "cold"),
    ("big", "small"), ("rich", "poor"), ("strong", "weak"), ("win", "lose"), ("true", "false"),
    ("easy", "difficult"), ("fast", "slow"), ("high", "low"), ("light", "dark"),
    ("beautiful", "ugly"), ("interesting", "boring"), ("increase", "decrease"),
    ("success", "failure"), ("like", "dislike"), ("positive", "negative"),
)


@dataclass(frozen=True)
class CounterFitConfig:
    """Hyperparameters of counter-fitting; the defaults are the paper's."""

    delta: float = 1.0      # antonyms are pushed to at least this distance (d = 1 - cos)
    gamma: float = 0.0      # synonyms are pulled to at most this distance
    rho: float = 0.2        # VSP neighbourhood radius in the original space
    k1: float = 0.1         # AR weight
    k2: float = 0.1         # SA weight
    k3: float = 0.1         # VSP weight
    iterations: int = 20


def load_glove(
    npy_path: Path, index_path: Path, vocab_size: int
) -> tuple[list[str], np.ndarray]:
    """The first ``vocab_size`` word-like tokens of GloVe (its rows are in frequency order).

    ``index_path`` is the parquet word index (one column, row i = word of matrix row i) or a
    text file with one word per line. Tokens that are not lower-case words (punctuation,
    numbers, ``@``-handles) are skipped: they are useless as substitutes.
    """
    if index_path.suffix == ".parquet":
        import pandas as pd

        tokens = pd.read_parquet(index_path).iloc[:, 0].astype(str).tolist()
    else:
        tokens = index_path.read_text(encoding="utf-8").split("\n")
    matrix = np.load(npy_path, mmap_mode="r")
    if matrix.shape[0] < len(tokens) - 1:
        raise ResourceError(f"{npy_path} has {matrix.shape[0]} rows but {index_path} "
                         f"lists {len(tokens)} words: the two files do not belong together")
    rows, words = [], []
    for i, tok in enumerate(tokens[: matrix.shape[0]]):
        if WORDLIKE.match(tok):
            rows.append(i)
            words.append(tok)
            if len(words) == vocab_size:
                break
    return words, np.asarray(matrix[rows], dtype=np.float32)


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def nearest_neighbours(
    matrix: np.ndarray, k: int = 50, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` neighbours by cosine of every row (itself excluded), computed in row blocks.

    Returns ``(indices int32 [V, k], cosines float32 [V, k])``, most similar first.
    """
    import torch

    unit = torch.from_numpy(normalise(matrix))
    n = unit.shape[0]
    k = min(k, n - 1)
    idx = np.empty((n, k), dtype=np.int32)
    sims = np.empty((n, k), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, n, block):
            stop = min(start + block, n)
            scores = unit[start:stop] @ unit.T
            scores[torch.arange(stop - start), torch.arange(start, stop)] = -float("inf")
            top = torch.topk(scores, k, dim=1)
            idx[start:stop] = top.indices.numpy()
            sims[start:stop] = top.values.numpy()
    return idx, sims


def wordnet_pairs(wn, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """WordNet ``(synonym_pairs, antonym_pairs)`` within ``words``, int64 arrays [P, 2], i < j.

    Synonyms: two single-word lemmas of one synset. Antonyms: a lemma of a synset and a lemma
    of a synset that one of its lemmas is an antonym of (synset-level antonymy). A pair that is
    both is kept as an antonym only.
    """
    index = {w: i for i, w in enumerate(words)}

    def ids(synset) -> list[int]:
        out = []
        for name in synset.lemma_names():
            i = index.get(name.lower())
            if i is not None and i not in out:
                out.append(i)
        return out

    syn: set[tuple[int, int]] = set()
    ant: set[tuple[int, int]] = set()
    for synset in wn.all_synsets():
        members = ids(synset)
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1:]:
                syn.add((min(a, b), max(a, b)))
        if not members:
            continue
        for lemma in synset.lemmas():
            for other in lemma.antonyms():
                for a in members:
                    for b in ids(other.synset()):
                        if a != b:
                            ant.add((min(a, b), max(a, b)))
    syn -= ant
    return _as_pairs(syn), _as_pairs(ant)


def _as_pairs(pairs: set[tuple[int, int]]) -> np.ndarray:
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def vsp_pairs(
    nn_idx: np.ndarray, nn_sims: np.ndarray, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within distance ``rho`` in the original space (from the top-k lists), i < j, and
    their original distances."""
    rows = np.repeat(np.arange(nn_idx.shape[0]), nn_idx.shape[1])
    cols = nn_idx.reshape(-1).astype(np.int64)
    dist = 1.0 - nn_sims.reshape(-1)
    keep = dist < rho
    a, b, d = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep], dist[keep]
    key = a * nn_idx.shape[0] + b
    _, first = np.unique(key, return_index=True)
    return np.stack([a[first], b[first]], axis=1), d[first].astype(np.float32)


def counter_fit(
    matrix: np.ndarray,
    synonyms: np.ndarray,
    antonyms: np.ndarray,
    vsp: tuple[np.ndarray, np.ndarray],
    config: CounterFitConfig = CounterFitConfig(),
) -> np.ndarray:
    """Counter-fit ``matrix`` (rows = words) with the given pair index arrays; returns unit rows.

    Deterministic: full-batch iterations of the authors' update rule, no sampling.
    """
    import torch

    vecs = torch.from_numpy(normalise(matrix)).double()
    n = vecs.shape[0]
    ant = torch.from_numpy(antonyms.astype(np.int64)).reshape(-1, 2)
    syn = torch.from_numpy(synonyms.astype(np.int64)).reshape(-1, 2)
    # As in the authors' code, pairs under a synonym/antonym constraint leave the VSP term:
    # otherwise VSP would pull close antonyms (good/bad) straight back together.
    vsp_pairs_, vsp_dist = _without(vsp[0], vsp[1], np.concatenate([synonyms, antonyms]), n)
    vsp_ij = torch.from_numpy(vsp_pairs_.astype(np.int64)).reshape(-1, 2)
    vsp_d0 = torch.from_numpy(vsp_dist).double()
    start = time.perf_counter()
    for it in range(config.iterations):
        update = torch.zeros_like(vecs)
        count = torch.zeros(n, dtype=torch.float64)
        push = functools.partial(_push, update, count)
        # AR: antonyms closer than delta move apart.
        i, j = ant[:, 0], ant[:, 1]
        dist = 1.0 - (vecs[i] * vecs[j]).sum(1)
        m = dist < config.delta
        push(i[m], j[m], config.k1 * (vecs[i[m]] - vecs[j[m]]))
        # SA: synonyms farther than gamma move together.
        i, j = syn[:, 0], syn[:, 1]
        dist = 1.0 - (vecs[i] * vecs[j]).sum(1)
        m = dist > config.gamma
        push(i[m], j[m], config.k2 * (vecs[j[m]] - vecs[i[m]]))
        # VSP: neighbours that drifted apart (d' >= d) move back together.
        i, j = vsp_ij[:, 0], vsp_ij[:, 1]
        dist = 1.0 - (vecs[i] * vecs[j]).sum(1)
        m = vsp_d0 <= dist
        push(i[m], j[m], config.k3 * (vecs[j[m]] - vecs[i[m]]))

        moved = count > 0
        vecs[moved] += update[moved] / count[moved, None]
        vecs = vecs / vecs.norm(dim=1, keepdim=True).clamp_min(1e-12)
        logger.debug("counter-fitting iteration %d/%d", it + 1, config.iterations)
    logger.info("counter-fitted %d vectors with %d synonym, %d antonym, %d VSP pairs in %.1f s",
                n, len(syn), len(ant), len(vsp_ij), time.perf_counter() - start)
    return vecs.float().numpy()


def _without(
    pairs: np.ndarray, dist: np.ndarray, remove: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` (i < j) and their ``dist`` minus any pair listed in ``remove`` (either order)."""
    pairs = pairs.reshape(-1, 2).astype(np.int64)
    remove = np.sort(remove.reshape(-1, 2).astype(np.int64), axis=1)
    keep = ~np.isin(pairs[:, 0] * n + pairs[:, 1], remove[:, 0] * n + remove[:, 1])
    return pairs[keep], dist[keep]


def _push(update, count, i, j, grad) -> None:
    """Accumulate one update per pair: word ``i`` moves by ``+grad``, word ``j`` by ``-grad``."""
    import torch

    update.index_add_(0, i, grad)
    update.index_add_(0, j, -grad)
    ones = torch.ones(i.shape[0], dtype=torch.float64)
    count.index_add_(0, i, ones)
    count.index_add_(0, j, ones)


def pair_stats(
    nn_idx: np.ndarray, nn_sims: np.ndarray, matrix: np.ndarray, pairs: np.ndarray,
    min_cos: float = 0.5,
) -> dict[str, float]:
    """For word pairs: the share that are within each other's top-k with cosine >= ``min_cos``
    (either direction), and their mean cosine."""
    if len(pairs) == 0:
        return {"pairs": 0, "share_in_nn": float("nan"), "mean_cos": float("nan")}
    a, b = pairs[:, 0], pairs[:, 1]
    a_has_b = ((nn_idx[a] == b[:, None]) & (nn_sims[a] >= min_cos)).any(1)
    b_has_a = ((nn_idx[b] == a[:, None]) & (nn_sims[b] >= min_cos)).any(1)
    unit = normalise(matrix)
    cos = (unit[a] * unit[b]).sum(1)
    return {
        "pairs": int(len(pairs)),
        "share_in_nn": float((a_has_b | b_has_a).mean()),
        "mean_cos": float(cos.mean()),
    }


def named_pairs(words: list[str], names=NAMED_ANTONYMS) -> np.ndarray:
    """Index pairs of the named antonyms present in ``words``."""
    index = {w: i for i, w in enumerate(words)}
    return np.array([(index[a], index[b]) for a, b in names if a in index and b in index],
                    dtype=np.int64).reshape(-1, 2)
