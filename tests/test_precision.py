"""Compute precision (bfloat16 autocast) and the shared pre-noise prefix (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsmi.noise import forward_sharing_prefix
from rsmi.precision import native_bf16, normalize_dtype, resolve_dtype


def _confident(clf):
    """Scale the head so that labels do not sit on a knife edge (bf16 rounding is ~0.4 %)."""
    with torch.no_grad():
        clf.model.classifier.weight.mul_(50.0)
    return clf


def test_dtype_names_and_resolution(monkeypatch):
    assert normalize_dtype("bf16") == "bfloat16"
    assert normalize_dtype("FP32") == "float32"
    with pytest.raises(ValueError, match="dtype='half'.*auto, float32, bfloat16, float16"):
        normalize_dtype("half")
    with pytest.raises(ValueError, match="float16 needs a CUDA device"):
        resolve_dtype("float16", "cpu")
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    # auto follows the CPU's bf16 flags.
    import rsmi.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx2"}))
    assert resolve_dtype("auto", "cpu") == "float32"
    assert not native_bf16("meta")


def test_bf16_and_fp32_give_the_same_labels_with_noise_off(make_classifier, texts):
    for masks in (0, 2):
        clf = _confident(make_classifier(noise_std=0.0, num_masks=masks, saliency_top_k=5 * (masks > 0)))
        fp32 = clf.predict(texts, seed=0)
        clf.set_dtype("bfloat16")
        assert clf.compute_dtype == "bfloat16"
        bf16 = clf.predict(texts, seed=0)
        np.testing.assert_array_equal(bf16.labels, fp32.labels)
        np.testing.assert_allclose(bf16.probs, fp32.probs, atol=0.05)
        np.testing.assert_array_equal(bf16.forward_passes, fp32.forward_passes)


def test_noise_draws_do_not_depend_on_the_compute_dtype(make_classifier, texts):
    clf = make_classifier(noise_std=0.2, noise_every=2)
    batch = clf.collate(clf.tokenize(texts[:2])[0])
    drawn = {}
    for dtype in (torch.float32, torch.bfloat16):
        hidden = torch.zeros(*batch["input_ids"].shape, 32, dtype=dtype)
        with clf.noise.per_row([11, 12], batch["attention_mask"]):
            drawn[dtype] = clf.noise._draw(hidden)
        assert drawn[dtype].dtype == dtype
    torch.testing.assert_close(drawn[torch.bfloat16].float(), drawn[torch.float32].bfloat16().float())


@pytest.mark.parametrize("vote", ["avg", "max"])
def test_shared_prefix_is_bit_identical_to_the_unshared_computation(make_classifier, texts, vote):
    clf = make_classifier(noise_std=0.3, noise_every=2, vote=vote, k0=5, k1=20, alpha=0.98)
    clf.share_prefix = False
    plain = clf.predict(texts, seed=3, batch_size=3)
    clf.share_prefix = True
    shared = clf.predict(texts, seed=3, batch_size=3)
    assert shared.second_step.any(), "the test needs inputs that reach step 2"
    for name in ("labels", "probs", "votes", "second_step", "forward_passes"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(plain, name), err_msg=name)


def test_shared_prefix_in_certify_is_bit_identical(make_classifier, texts):
    clf = make_classifier(noise_std=0.3, noise_every=3)
    clf.share_prefix = False
    plain = clf.certify(texts[:3], n0=10, n=40, alpha=0.01, seed=1)
    clf.share_prefix = True
    shared = clf.certify(texts[:3], n0=10, n=40, alpha=0.01, seed=1)
    np.testing.assert_array_equal(shared.counts, plain.counts)
    np.testing.assert_array_equal(shared.labels, plain.labels)
    np.testing.assert_array_equal(shared.radius, plain.radius)


def test_shared_prefix_runs_block_zero_once_per_distinct_row(make_classifier, texts):
    clf = make_classifier(noise_std=0.2, noise_every=3)
    batch = clf.collate(clf.tokenize(texts[:2])[0])
    # rows: a a a b a b  → 2 distinct inputs
    order = torch.tensor([0, 0, 0, 1, 0, 1])
    rows = {k: v.index_select(0, order) for k, v in batch.items()}
    seen: list[int] = []
    # Count the rows block 0's attention really computes (its own hooks see every call).
    handle = clf.noise.blocks[0].attention.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[0]) if args else None
    )
    try:
        with torch.inference_mode(), clf.noise.per_row(list(range(6)), rows["attention_mask"]):
            shared = forward_sharing_prefix(clf.model, clf.noise, rows).logits
    finally:
        handle.remove()
    assert seen == [2], f"block 0 ran on {seen} rows; expected once on the 2 distinct rows"
    with torch.inference_mode(), clf.noise.per_row(list(range(6)), rows["attention_mask"]):
        plain = clf.model(**rows).logits
    torch.testing.assert_close(shared, plain, rtol=0, atol=0)
    # The shadowing of block 0's forward is undone.
    assert "forward" not in vars(clf.noise.blocks[0])
