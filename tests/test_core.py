"""RSMI core: config, noise, saliency/masking, two-step inference, certify, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import norm

from conftest import make_tiny_bert
from rsmi import ABSTAIN, ModelLoadError, RSMIClassifier, RSMIConfig
from rsmi.classifier import binomial_p_value
from rsmi.masking import mask_candidates, mask_top, saliency, special_token_mask
from rsmi.noise import HiddenStateNoise, find_encoder_blocks
from rsmi.testing.reference import binomial_p_value_closed_form, reference_predict

# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_reference_values():
    cfg = RSMIConfig()
    assert (cfg.noise_std, cfg.noise_every, cfg.num_masks, cfg.saliency_top_k) == (0.2, 3, 2, 5)
    assert (cfg.grad_noise_weight, cfg.k0, cfg.k1, cfg.alpha, cfg.vote) == (1.0, 5, 50, 0.98, "avg")
    assert cfg.noised_blocks(12) == [0, 3, 6, 9]
    assert (cfg.candidate_rule, cfg.step2_resample) == ("content", False)  # today's behaviour
    assert RSMIConfig.from_dict(cfg.to_dict()) == cfg
    authors = cfg.replace(candidate_rule="authors", step2_resample=True)
    assert RSMIConfig.from_dict(authors.to_dict()) == authors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("noise_std", -0.1),
        ("noise_std", float("nan")),
        ("noise_every", 0),
        ("num_masks", -1),
        ("num_masks", 6),
        ("k0", 0),
        ("k1", 0),
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("alpha", 1.5),
        ("vote", "mean"),
        ("candidate_rule", "top"),
        ("step2_resample", 1),
        ("max_length", 2),
        ("k0", 2.5),
    ],
)
def test_config_rejects_invalid_values(field, value):
    with pytest.raises(ValueError, match=field):
        RSMIConfig().replace(**{field: value})


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown RSMIConfig field"):
        RSMIConfig.from_dict({"sigma": 0.2})


# ----------------------------------------------------------------------------- noise


def _capture(blocks, store, key):
    def hook(module, args, output):
        store.setdefault(key, {})[id(module)] = (
            (output[0] if isinstance(output, tuple) else output).detach().clone()
        )

    return [b.register_forward_hook(hook) for b in blocks]


def test_noise_lands_only_on_configured_blocks_with_configured_std(tokenizer):
    model = make_tiny_bert(tokenizer, layers=7, hidden=64)
    blocks = find_encoder_blocks(model)
    store: dict = {}
    _capture(blocks, store, "before")  # registered before the noise hooks: sees clean outputs
    noise = HiddenStateNoise(model, noise_std=0.7, noise_every=3)
    noise.generator = torch.Generator().manual_seed(0)
    _capture(blocks, store, "after")  # registered after: sees noisy outputs
    ids = tokenizer(["some words here to carry the noise"] * 16, return_tensors="pt")
    with torch.no_grad():
        model(**ids)
    assert noise.noised_blocks == [0, 3, 6]
    for i, block in enumerate(blocks):
        diff = store["after"][id(block)] - store["before"][id(block)]
        if i in (0, 3, 6):
            assert diff.std().item() == pytest.approx(0.7, rel=0.05)
            assert diff.mean().abs().item() < 0.02
        else:
            assert torch.equal(diff, torch.zeros_like(diff))


def test_noise_off_equals_plain_model(tokenizer, texts):
    plain = make_tiny_bert(tokenizer)
    clf = RSMIClassifier(
        make_tiny_bert(tokenizer), tokenizer, RSMIConfig(noise_std=0.5, noise_every=1)
    )
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = plain(**enc).logits
        with clf.noise.disabled():
            off = clf.model(**enc).logits
        on = clf.model(**enc).logits
    assert torch.equal(off, expected)
    assert not torch.allclose(on, expected)


def test_per_row_noise_is_independent_of_padding_and_batch(make_classifier, texts):
    clf = make_classifier(noise_std=0.5)
    enc_alone = clf.collate(clf.tokenize([texts[0]])[0])
    enc_batch = clf.collate(clf.tokenize(texts)[0])
    with torch.no_grad():
        with clf.noise.per_row([123], enc_alone["attention_mask"]):
            alone = clf.model(**enc_alone).logits[0]
        seeds = [123] + list(range(1, len(texts)))
        with clf.noise.per_row(seeds, enc_batch["attention_mask"]):
            batch = clf.model(**enc_batch).logits[0]
    torch.testing.assert_close(alone, batch, atol=1e-5, rtol=1e-4)


def test_block_discovery_for_other_architectures(tokenizer):
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        ElectraConfig,
        ElectraForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    small = dict(vocab_size=200, max_position_embeddings=64)
    models = [
        DistilBertForSequenceClassification(
            DistilBertConfig(dim=32, n_layers=3, n_heads=2, hidden_dim=64, **small)
        ),
        RobertaForSequenceClassification(
            RobertaConfig(
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=2,
                intermediate_size=64,
                **small,
            )
        ),
        ElectraForSequenceClassification(
            ElectraConfig(
                hidden_size=32,
                embedding_size=32,
                num_hidden_layers=3,
                num_attention_heads=2,
                intermediate_size=64,
                **small,
            )
        ),
    ]
    for model in models:
        model.eval()
        noise = HiddenStateNoise(model, noise_std=1.0, noise_every=2)
        assert len(noise.blocks) == 3 and noise.noised_blocks == [0, 2]
        ids = torch.randint(5, 200, (2, 9))
        with torch.no_grad():
            noisy = model(input_ids=ids).logits
            with noise.disabled():
                clean1 = model(input_ids=ids).logits
                clean2 = model(input_ids=ids).logits
        assert torch.equal(clean1, clean2) and not torch.allclose(noisy, clean1)

    with pytest.raises(ValueError, match="cannot find the encoder blocks"):
        HiddenStateNoise(torch.nn.Linear(3, 3), 0.1, 1)


# ----------------------------------------------------------------------------- saliency / masking


def test_saliency_equals_finite_difference_gradient(tokenizer):
    model = make_tiny_bert(tokenizer, layers=2, hidden=16).double()
    enc = tokenizer(["a fine movie"], return_tensors="pt")
    label = torch.tensor([1])
    sal = saliency(model, enc, label)
    embeds = model.get_input_embeddings()(enc["input_ids"]).detach()
    extra = {k: v for k, v in enc.items() if k != "input_ids"}

    def loss_at(e):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(
                model(inputs_embeds=e, **extra).logits, label
            ).item()

    eps = 1e-6
    numeric = torch.zeros_like(embeds)
    for t in range(embeds.shape[1]):
        for d in range(embeds.shape[2]):
            plus, minus = embeds.clone(), embeds.clone()
            plus[0, t, d] += eps
            minus[0, t, d] -= eps
            numeric[0, t, d] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
    torch.testing.assert_close(sal.grads, numeric, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(sal.scores, numeric.norm(dim=-1), atol=1e-7, rtol=1e-5)
    # No gradient left on any parameter, no requires_grad flag changed.
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_masking_skips_special_tokens_and_padding_per_example(tokenizer, texts):
    model = make_tiny_bert(tokenizer)
    enc = tokenizer(["ok", texts[2], "bad"], padding=True, return_tensors="pt")
    sal = saliency(model, enc, reduction="sum")
    forbidden = special_token_mask(
        enc["input_ids"], enc["attention_mask"], tokenizer.all_special_ids
    )
    cands = mask_candidates(sal.scores, forbidden, top_k=5)
    assert cands.counts.tolist() == [1, 5, 1]
    masked = mask_top(enc["input_ids"], cands, 2, tokenizer.mask_token_id)
    is_mask = masked == tokenizer.mask_token_id
    assert is_mask.sum(dim=1).tolist() == [1, 2, 1]
    assert not (is_mask & forbidden).any()
    # The long example's masks are its two most salient ordinary tokens.
    scores = sal.scores[1].masked_fill(forbidden[1], float("-inf"))
    assert set(is_mask[1].nonzero().flatten().tolist()) == set(scores.topk(2).indices.tolist())
    # A later batch is unaffected by the short inputs (published defect: masks dropped to 1).
    enc2 = tokenizer([texts[2], texts[5]], padding=True, return_tensors="pt")
    sal2 = saliency(model, enc2, reduction="sum")
    forb2 = special_token_mask(enc2["input_ids"], enc2["attention_mask"], tokenizer.all_special_ids)
    masked2 = mask_top(
        enc2["input_ids"], mask_candidates(sal2.scores, forb2, 5), 2, tokenizer.mask_token_id
    )
    assert (masked2 == tokenizer.mask_token_id).sum(dim=1).tolist() == [2, 2]


def test_candidate_rules_on_hand_built_saliency():
    from rsmi.masking import select_candidates

    cls, sep, pad = 101, 102, 0
    ids = torch.tensor([[cls, 11, 12, 13, 14, 15, 16, sep],
                        [cls, 21, 22, sep, pad, pad, pad, pad]])
    attention = (ids != pad).long()
    # Row 0: [CLS] and [SEP] are the two most salient tokens; row 1 is short, padding has the
    # largest scores of all (must never count).
    scores = torch.tensor([[9.0, 1.0, 7.0, 2.0, 6.0, 5.0, 3.0, 8.0],
                           [1.0, 3.0, 2.0, 4.0, 99.0, 99.0, 99.0, 99.0]])
    special = [cls, sep, pad]
    content = select_candidates(scores, ids, attention, special, 5, "content")
    assert content.counts.tolist() == [5, 2]
    assert content.positions[0].tolist() == [2, 4, 5, 6, 3]
    assert content.positions[1].tolist() == [1, 2, -1, -1, -1]
    authors = select_candidates(scores, ids, attention, special, 5, "authors")
    # Top 5 of row 0 = [CLS] 0, [SEP] 7, 2, 4, 5 → the specials dropped: 3 candidates remain.
    assert authors.counts.tolist() == [3, 2]
    assert authors.positions[0].tolist() == [2, 4, 5, -1, -1]
    assert authors.positions[1].tolist() == [1, 2, -1, -1, -1]
    masked = mask_top(ids, authors, 2, 103)
    assert masked[0].tolist() == [cls, 11, 103, 13, 103, 15, 16, sep]
    with pytest.raises(ValueError, match="candidate_rule"):
        select_candidates(scores, ids, attention, special, 5, "top")
    # The authors' step 2 draws with replacement: a position can come twice.
    gen = torch.Generator().manual_seed(0)
    draws = [tuple(authors.random_with_replacement(0, 2, gen).tolist()) for _ in range(200)]
    assert {p for d in draws for p in d} == {2, 4, 5}
    assert any(a == b for a, b in draws)
    assert all(len(set(authors.random(0, 2, gen).tolist())) == 2 for _ in range(50))


def test_step2_resample_pays_one_more_saliency_pass(make_classifier, texts):
    clf = make_classifier(noise_std=0.3, k1=6, step2_resample=True, candidate_rule="authors")
    pred = clf.predict(texts, seed=7)
    expected = np.where(pred.second_step, 1 + 5 + 1 + 6, 1 + 5)
    np.testing.assert_array_equal(pred.forward_passes, expected)
    assert pred.second_step.any()


def test_batch_whose_shortest_sequence_has_ten_tokens(make_classifier):
    clf = make_classifier()
    text10 = "one two three four five six seven eight"  # 8 words + [CLS] + [SEP] = 10 tokens
    assert len(clf.tokenize([text10])[0][0]["input_ids"]) == 10
    pred = clf.predict([text10, text10 + " nine ten eleven twelve"], seed=0)
    assert len(pred) == 2


# ----------------------------------------------------------------------------- two-step inference


def test_binomial_test_closed_form_matches_scipy():
    for k0 in (1, 3, 5, 10):
        for n_a in range(k0 + 1):
            assert binomial_p_value(n_a, k0) == pytest.approx(binomial_p_value_closed_form(n_a, k0))
    # With k0 = 5, alpha = 0.98 step 2 runs exactly when the votes are not unanimous.
    assert [binomial_p_value(n, 5) < 0.98 for n in range(6)] == [True] * 5 + [False]


@pytest.mark.parametrize(
    ("vote", "candidate_rule", "step2_resample"),
    [("avg", "content", False), ("max", "content", False), ("avg", "authors", False),
     ("avg", "authors", True), ("max", "content", True)],
)
def test_batched_predictor_equals_per_example_reference(
    make_classifier, texts, vote, candidate_rule, step2_resample
):
    clf = make_classifier(noise_std=0.3, vote=vote, k1=20, candidate_rule=candidate_rule,
                          step2_resample=step2_resample)
    pred = clf.predict(texts, seed=7, batch_size=3, max_rows=16)
    step2_seen = set()
    for i, text in enumerate(texts):
        ref = reference_predict(clf, text, seed=7, occurrence=texts[:i].count(text))
        assert pred.labels[i] == ref.label
        np.testing.assert_array_equal(pred.votes[i], ref.votes)
        np.testing.assert_allclose(pred.probs[i], ref.probs, atol=1e-4)
        assert pred.second_step[i] == ref.second_step == (ref.step1_votes.max() < 5)
        assert pred.forward_passes[i] == ref.forward_passes
        step2_seen.add(bool(ref.second_step))
    assert step2_seen == {True, False}, "the fixture must exercise both steps"
    np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0)


def test_prediction_does_not_depend_on_batching(make_classifier, texts):
    clf = make_classifier(noise_std=0.3, k1=10)
    a = clf.predict(texts, seed=3, batch_size=1, max_rows=7)
    b = clf.predict(texts, seed=3, batch_size=8, max_rows=1024)
    np.testing.assert_array_equal(a.votes, b.votes)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    c = clf.predict(texts, seed=4, batch_size=8)
    assert not np.array_equal(a.votes, c.votes)


def test_forward_passes_count_real_encoder_rows(make_classifier, texts):
    clf = make_classifier(noise_std=0.3, k1=12)
    rows = []
    handle = clf.model.bert.encoder.register_forward_hook(
        lambda m, a, o: rows.append(o[0].shape[0])
    )
    pred = clf.predict(texts, seed=1, batch_size=4, max_rows=10)
    handle.remove()
    assert sum(rows) == pred.forward_passes.sum()
    expected = 1 + 5 + 12 * pred.second_step.astype(int)
    np.testing.assert_array_equal(pred.forward_passes, expected)


def test_plain_config_costs_one_pass_and_matches_the_model(make_classifier, texts):
    clf = make_classifier(**RSMIConfig.plain(max_length=64).to_dict())
    pred = clf.predict(texts)
    assert (pred.forward_passes == 1).all() and not pred.second_step.any()
    enc = clf.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(clf.model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(pred.probs, expected, atol=1e-5)


def test_empty_text_and_truncation(make_classifier, texts):
    clf = make_classifier(max_length=16)
    with pytest.raises(ValueError, match="input 1 is empty"):
        clf.predict(["fine", "   "])
    pred = clf.predict([texts[0], texts[2]])
    assert pred.truncated.tolist() == [False, True]


# ----------------------------------------------------------------------------- certify


def test_certify_abstains_when_classes_cannot_be_separated(make_classifier, texts):
    clf = make_classifier(noise_std=20.0, noise_every=1)  # noise swamps the signal: ~coin flips
    cert = clf.certify(texts[:3], n0=20, n=200, alpha=0.001, seed=0)
    assert (cert.labels == ABSTAIN).all() and (cert.radius == 0).all()
    assert (cert.counts.sum(axis=1) == 200).all()


@pytest.mark.parametrize("sigma", [0.1, 0.25, 0.5])
def test_certify_radius_is_sigma_times_inverse_normal_of_the_bound(make_classifier, texts, sigma):
    clf = make_classifier(noise_std=sigma)
    with torch.no_grad():
        clf.model.classifier.bias.copy_(torch.tensor([0.0, 50.0]))  # separates: always class 1
    n, alpha = 500, 0.001
    cert = clf.certify(texts[:2], n0=10, n=n, alpha=alpha, seed=0)
    assert cert.labels.tolist() == [1, 1]
    bound = alpha ** (1 / n)  # Clopper-Pearson lower bound when all n samples agree
    np.testing.assert_allclose(cert.p_lower, bound)
    np.testing.assert_allclose(cert.radius, sigma * norm.ppf(bound))
    assert (cert.forward_passes == 1 + 10 + n).all()


def test_certify_needs_noise(make_classifier):
    with pytest.raises(ValueError, match="noise_std > 0"):
        make_classifier(noise_std=0.0).certify(["x"])


# ----------------------------------------------------------------------------- persistence


def test_save_load_round_trip_gives_identical_predictions(make_classifier, texts, tmp_path):
    clf = make_classifier(noise_std=0.3, k1=10)
    clf.label_names = ["negative", "positive"]
    before = clf.predict(texts, seed=5)
    clf.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not list((tmp_path / "m").glob("*.bin"))
    loaded = RSMIClassifier.from_pretrained(tmp_path / "m")
    assert loaded.config == clf.config and loaded.label_names == ["negative", "positive"]
    after = loaded.predict(texts, seed=5)
    np.testing.assert_array_equal(before.votes, after.votes)
    np.testing.assert_allclose(before.probs, after.probs, atol=1e-6)
    overridden = RSMIClassifier.from_pretrained(tmp_path / "m", k0=3)
    assert overridden.config.k0 == 3
    with pytest.raises(ValueError, match="alpha"):
        RSMIClassifier.from_pretrained(tmp_path / "m", alpha=2.0)


def test_corrupt_or_missing_files_name_the_file(make_classifier, tmp_path):
    clf = make_classifier()
    path = clf.save_pretrained(tmp_path / "m")
    weights = path / "model.safetensors"
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        RSMIClassifier.from_pretrained(path)
    weights.unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors is missing"):
        RSMIClassifier.from_pretrained(path)
    (path / "rsmi.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="rsmi.json"):
        RSMIClassifier.from_pretrained(path)


def test_pickled_weights_are_never_loaded(make_classifier, tmp_path):
    clf = make_classifier()
    path = clf.save_pretrained(tmp_path / "m")
    (path / "model.safetensors").unlink()
    clf.model.save_pretrained(path, safe_serialization=False)  # writes pytorch_model.bin (pickle)
    assert (path / "pytorch_model.bin").exists()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        RSMIClassifier.from_pretrained(path)


def test_new_head_on_an_encoder_directory(tokenizer, tmp_path):
    encoder = make_tiny_bert(tokenizer, num_labels=2)
    encoder.save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    clf = RSMIClassifier.from_pretrained(tmp_path / "enc", label_names=["a", "b", "c"], num_masks=1)
    assert clf.num_labels == 3 and clf.config.num_masks == 1
    assert clf.predict(["hello there"]).probs.shape == (1, 3)
    with pytest.raises(ModelLoadError, match="cannot load encoder"):
        RSMIClassifier.from_pretrained(tmp_path / "nothing-here")


def test_saved_description_is_plain_json(make_classifier, tmp_path):
    path = make_classifier().save_pretrained(tmp_path / "m")
    meta = json.loads((path / "rsmi.json").read_text())
    assert meta["format"] == "rsmi" and meta["config"]["noise_std"] == 0.2
