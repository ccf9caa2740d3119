"""Configuration views, the one mask policy, and the checks at the classifier's API.

* A view (``clf.configured(cfg, dtype=...)``, ``clf.plain()``) answers exactly as a classifier
  built with that configuration on the same weights (the way results were computed before
  views existed), leaves the classifier it came from unchanged, and views used alternately
  each keep their own answers.
* :class:`rsmi.masking.MaskPolicy` chooses the masks of training and of both inference steps;
  inference through it still agrees with the one-example-at-a-time reference
  (:mod:`rsmi.testing.reference`), and training masks what the policy says.
* ``CASES``: hostile arguments to ``predict`` / ``certify`` / ``RSMIConfig`` / ``configured``,
  each refused with an :class:`rsmi.errors.RSMIError` that says what is allowed
  (docs/reliability.md, "Trust round 2: inputs to predict and certify").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig
from rsmi.errors import ConfigError, InputError, RSMIError
from rsmi.masking import MaskPolicy, saliency, select_candidates
from rsmi.testing.reference import reference_predict

SMALL = dict(max_length=48, k1=8)
CONFIGS = {
    "noisier": RSMIConfig(noise_std=0.5, **SMALL),
    "authors-resample-max": RSMIConfig(
        noise_std=0.3, candidate_rule="authors", step2_resample=True, vote="max", **SMALL
    ),
    "no-masks": RSMIConfig(noise_std=0.3, num_masks=0, **SMALL),
    "plain": RSMIConfig.plain(48),
}


def build(tokenizer, config: RSMIConfig, dtype: str = "float32") -> RSMIClassifier:
    """A classifier built with ``config`` on its own copy of the weights (the old way)."""
    return RSMIClassifier(make_tiny_bert(tokenizer, layers=3), tokenizer, config, dtype=dtype)


def answers(clf: RSMIClassifier, texts: list[str], seed: int = 4) -> tuple[np.ndarray, ...]:
    pred = clf.predict(texts, seed=seed, batch_size=3, max_rows=16)
    return pred.labels, pred.probs, pred.votes, pred.second_step, pred.forward_passes


def assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)  # bit-identical, not approximately equal


@pytest.fixture
def base(tokenizer) -> RSMIClassifier:
    return build(tokenizer, RSMIConfig(noise_std=0.2, **SMALL))


# ----------------------------------------------------------------------------- views
@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_view_answers_as_a_classifier_built_with_its_config(base, tokenizer, texts, name):
    config = CONFIGS[name]
    before = answers(base, texts)
    view = base.configured(config)
    assert view.model is base.model and view.tokenizer is base.tokenizer  # shared weights
    assert_same(answers(view, texts), answers(build(tokenizer, config), texts))
    # The classifier the view came from is unchanged, and answers as before.
    assert base.config == RSMIConfig(noise_std=0.2, **SMALL) and not base.is_view
    assert_same(answers(base, texts), before)


def test_certify_of_a_view_equals_certify_of_a_built_classifier(base, tokenizer, texts):
    config = CONFIGS["noisier"]
    got = base.configured(config).certify(texts[:3], n0=4, n=12, seed=2, max_rows=8)
    want = build(tokenizer, config).certify(texts[:3], n0=4, n=12, seed=2, max_rows=8)
    for field in ("labels", "radius", "p_lower", "counts", "forward_passes"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def test_plain_is_the_noise_off_model_and_leaves_the_classifier_alone(base, texts):
    noise = base.noise
    plain = base.plain()
    assert plain.config == RSMIConfig.plain(base.config.max_length)
    pred = plain.predict(texts)
    assert (pred.forward_passes == 1).all() and not pred.second_step.any()
    enc = base.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad(), base.noise.disabled():
        expected = torch.softmax(base.model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(pred.probs, expected, atol=1e-5)
    assert base.noise is noise and base.config.noise_std == 0.2


def test_two_views_used_alternately_each_give_their_own_answers(base, tokenizer, texts):
    a_config, b_config = CONFIGS["noisier"], CONFIGS["authors-resample-max"]
    want_a = answers(build(tokenizer, a_config), texts)
    want_b = answers(build(tokenizer, b_config), texts)
    a, b = base.configured(a_config), base.configured(b_config)
    for _ in range(2):
        assert_same(answers(a, texts), want_a)
        assert_same(answers(b, texts), want_b)
    # A view of a view is a view of the same weights too.
    assert_same(answers(a.configured(b_config), texts), want_b)


def test_a_dtype_view_changes_only_the_view(base, texts):
    view = base.configured(dtype="bfloat16")
    assert (view.dtype, view.compute_dtype) == ("bfloat16", "bfloat16")
    assert (base.dtype, base.compute_dtype) == ("float32", "float32")
    assert view.config == base.config
    pred = view.predict(texts[:2])
    assert pred.probs.shape == (2, 2) and np.isfinite(pred.probs).all()


def test_direct_model_calls_use_the_classifier_noise_unless_a_view_is_activated(base, texts):
    enc = base.tokenizer(texts[:2], padding=True, return_tensors="pt")

    def direct(generator_seed: int) -> torch.Tensor:
        base.noise.generator = torch.Generator().manual_seed(generator_seed)
        with torch.no_grad():
            return base.model(**enc).logits

    before = direct(0)
    view = base.configured(base.config.replace(noise_std=5.0))
    view.predict(texts[:2])
    assert torch.equal(direct(0), before)  # the training loop's forward passes are unchanged
    with view.activated(), torch.no_grad():
        view.noise.generator = torch.Generator().manual_seed(0)
        loud = base.model(**enc).logits
    assert not torch.allclose(loud, before)
    assert torch.equal(direct(0), before)


def test_set_config_and_set_dtype_still_work_but_are_deprecated(base):
    with pytest.warns(DeprecationWarning, match="configured"):
        base.set_config(base.config.replace(k0=3))
    with pytest.warns(DeprecationWarning, match="configured"):
        base.set_dtype("bfloat16")
    assert base.config.k0 == 3 and base.compute_dtype == "bfloat16"


@pytest.fixture(scope="module")
def textattack_offline(tmp_path_factory):
    """TextAttack imported with test_attack's tiny offline resources (no download)."""
    from rsmi.attacks._textattack import load_textattack
    from test_attack import TinyResources

    return load_textattack(TinyResources(tmp_path_factory.mktemp("resources")))


def test_transfer_surrogate_is_the_plain_view_and_the_classifier_is_not_touched(
    base, texts, textattack_offline
):
    from rsmi.attacks.wrapper import RSMIModelWrapper

    wrapper = RSMIModelWrapper(base, seed=1)
    noise, config = base.noise, base.config
    with wrapper.deterministic() as surrogate:
        assert wrapper.classifier is surrogate and surrogate.config.noise_std == 0
        first = wrapper.predict_probs(texts[:3])
        np.testing.assert_array_equal(first, wrapper.predict_probs(texts[:3]))  # deterministic
    assert wrapper.classifier is base and base.noise is noise and base.config is config
    np.testing.assert_array_equal(first, base.plain().predict(texts[:3]).probs)


# ----------------------------------------------------------------------------- mask policy
@pytest.mark.parametrize("name", ["noisier", "authors-resample-max"])
def test_inference_through_the_policy_agrees_with_the_reference(base, texts, name):
    view = base.configured(CONFIGS[name].replace(k1=12))
    pred = view.predict(texts, seed=7, batch_size=3, max_rows=16)
    for i, text in enumerate(texts):
        ref = reference_predict(view, text, seed=7, occurrence=texts[:i].count(text))
        assert pred.labels[i] == ref.label and pred.forward_passes[i] == ref.forward_passes
        np.testing.assert_array_equal(pred.votes[i], ref.votes)


def test_training_and_inference_choose_masks_with_one_policy(make_classifier, tokenizer):
    from accelerate import Accelerator

    from rsmi.training.config import TrainConfig
    from rsmi.training.steps import StepContext, rsmi_inputs

    clf = make_classifier(layers=3, noise_every=1, num_masks=2, saliency_top_k=4)
    enc = tokenizer(["the movie was great and the plot was fine", "good"], padding=True,
                    return_tensors="pt")
    batch = {**enc, "labels": torch.tensor([1, 0])}
    for rule in ("content", "authors"):
        cfg = TrainConfig(num_masks=2, saliency_top_k=4, noise_every=1, candidate_rule=rule)
        ctx = StepContext(clf.model, clf.model, Accelerator(cpu=True), cfg, clf.special_ids,
                          tokenizer.mask_token_id, torch.Generator())
        policy = ctx.mask_policy
        assert policy == MaskPolicy.for_tokenizer(clf.config.replace(candidate_rule=rule), tokenizer)
        clf.noise.generator = torch.Generator().manual_seed(3)
        got = rsmi_inputs(ctx, batch)
        clf.noise.generator = torch.Generator().manual_seed(3)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        scores = saliency(clf.model, inputs, batch["labels"]).scores
        cands = select_candidates(scores, enc["input_ids"], enc["attention_mask"],
                                  clf.special_ids, 4, rule)
        assert torch.equal(got.masked_ids, policy.step1(enc["input_ids"], cands))
        # Step 2's draws are Candidates.random / random_with_replacement with the same generator.
        for resample, draw in ((False, cands.random), (True, cands.random_with_replacement)):
            step2 = MaskPolicy(2, 4, rule, resample, tuple(clf.special_ids),
                               tokenizer.mask_token_id)
            mine = step2.step2_positions(cands, 0, torch.Generator().manual_seed(9))
            assert torch.equal(mine, draw(0, 2, torch.Generator().manual_seed(9)))


# ----------------------------------------------------------------------------- trust
@dataclass
class Case:
    name: str
    call: Callable[[RSMIClassifier], object]
    error: type[RSMIError]
    message: str


CASES = [
    Case("predict bytes", lambda c: c.predict(b"a good film"), InputError, "bytes, not a string.*decode"),
    Case("predict bytes inside a list", lambda c: c.predict(["fine", b"x"]), InputError, "input 1 is bytes"),
    Case("predict a number inside a list", lambda c: c.predict(["fine", 3]), InputError, "input 1 is a int"),
    Case("predict None", lambda c: c.predict(None), InputError, "NoneType, not a string"),
    Case("predict a number", lambda c: c.predict(5), InputError, "int, not a string"),
    Case("predict seed 1.5", lambda c: c.predict("x", seed=1.5), ConfigError, "seed=1.5.*integer"),
    Case("predict batch_size 0", lambda c: c.predict("x", batch_size=0), ConfigError, "batch_size=0.*≥ 1"),
    Case("predict max_rows 0", lambda c: c.predict("x", max_rows=0), ConfigError, "max_rows=0.*≥ 1"),
    Case("certify n0 1.5", lambda c: c.certify("x", n0=1.5), ConfigError, "n0=1.5.*integer ≥ 1"),
    Case("certify n 0", lambda c: c.certify("x", n=0), ConfigError, "n=0.*integer ≥ 1"),
    Case("certify n -5", lambda c: c.certify("x", n=-5), ConfigError, "n=-5.*integer ≥ 1"),
    Case("certify n True", lambda c: c.certify("x", n=True), ConfigError, "n=True.*integer"),
    Case("certify n 10^8", lambda c: c.certify("x", n=10**8), ConfigError, "n=100000000.*at most 10,000,000"),
    Case("certify alpha 0", lambda c: c.certify("x", alpha=0.0), ConfigError, r"alpha=0.0.*\(0, 1\)"),
    Case("certify alpha 1.5", lambda c: c.certify("x", alpha=1.5), ConfigError, r"alpha=1.5.*\(0, 1\)"),
    Case("certify alpha nan", lambda c: c.certify("x", alpha=float("nan")), ConfigError, "alpha=nan"),
    Case("certify alpha text", lambda c: c.certify("x", alpha="0.1"), ConfigError, "alpha='0.1'"),
    Case("k0 10^8", lambda c: c.configured(c.config.replace(k0=10**8)), ConfigError, "k0=100000000.*at most 100,000"),
    Case("k1 10^8", lambda c: RSMIConfig(k1=10**8), ConfigError, "k1=100000000.*at most 100,000"),
    Case("k0 2.5", lambda c: RSMIConfig(k0=2.5), ConfigError, "k0=2.5.*integer ≥ 1"),
    Case("noise_std -1", lambda c: RSMIConfig(noise_std=-1), ConfigError, "noise_std"),
    Case("unknown field", lambda c: c.config.replace(sigma=1), ConfigError, "unknown RSMIConfig field"),
    Case("dtype fp8", lambda c: c.configured(dtype="fp8"), ConfigError, "dtype='fp8'"),
    Case("max_length beyond positions", lambda c: c.configured(c.config.replace(max_length=4096)),
         ConfigError, "exceeds the model's 128 positions"),
    Case("candidate rule", lambda c: MaskPolicy(2, 5, "top"), ConfigError, "candidate_rule='top'"),
    Case("no mask token", lambda c: MaskPolicy(2, 5, mask_token_id=None), ConfigError, "no mask token"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_arguments_are_refused_with_what_is_allowed(base, case):
    config = base.config
    with pytest.raises(case.error, match=case.message) as err:
        case.call(base)
    assert isinstance(err.value, ValueError)  # code that caught ValueError still catches it
    assert "\n" not in str(err.value) and base.config is config


def test_a_non_string_input_is_still_a_type_error(base):
    with pytest.raises(TypeError):  # what check_texts raised before
        base.predict(["fine", 3])
