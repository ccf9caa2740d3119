"""RS: Gaussian noise on the output hidden states of chosen encoder blocks.

The noise is added by forward hooks on the blocks of any encoder whose blocks form a
``torch.nn.ModuleList`` (BERT, RoBERTa, DistilBERT, ELECTRA, MiniLM, ...); nothing of the
model's own ``forward`` is replaced, so the code does not depend on a transformers version.

Two ways to draw the noise:

* one ``torch.Generator`` for the whole batch (training: fastest), or
* one seed per input row (inference): row ``r`` draws its noise, block after block, from a
  generator seeded with ``row_seeds[r]``, only at its non-padding positions. A prediction then
  depends only on its own seeds, not on the batch it was computed in, its padding or the
  chunking of the forward passes, so a seed reproduces a prediction exactly. The row seeds
  follow the text (:func:`text_digest`, :func:`row_key`; seeding ``"text-v1"`` of
  :mod:`rsmi.inference`), not its position among the inputs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rsmi.errors import InputError, ModelLoadError

# Attribute paths of the block list, tried in order, below the base model and the full model.
BLOCK_PATHS: tuple[str, ...] = (
    "encoder.layer",  # BERT, RoBERTa, ELECTRA, MiniLM, XLM-R, DeBERTa
    "transformer.layer",  # DistilBERT
    "encoder.layers",
    "layers",
    "layer",
    "transformer.h",
    "h",
    "encoder.block",
    "block",
)


def find_encoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The ``ModuleList`` of transformer blocks of a Hugging Face encoder (or its head model)."""
    roots: list[nn.Module] = []
    prefix = getattr(model, "base_model_prefix", None)
    if prefix and isinstance(getattr(model, prefix, None), nn.Module):
        roots.append(getattr(model, prefix))
    roots.append(model)
    for root in roots:
        for path in BLOCK_PATHS:
            obj: object = root
            for part in path.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if isinstance(obj, nn.ModuleList) and len(obj) > 0:
                return obj
    raise ModelLoadError(
        f"cannot find the encoder blocks of {type(model).__name__}: RSMI adds noise with forward "
        f"hooks on a ModuleList of transformer blocks and looked for one at {', '.join(BLOCK_PATHS)} "
        "(below the base model and the model itself). Use an encoder of a supported layout "
        "(BERT, RoBERTa, DistilBERT, ELECTRA, MiniLM, ...)."
    )


@dataclass
class _RowNoise:
    generators: list[torch.Generator]
    attention_mask: torch.Tensor  # (rows, T) bool, True = real token
    counts: list[int]  # real tokens per row


class _ModelHooks:
    """The one set of noise hooks of an encoder, shared by every noise setting of that model.

    Every block carries one forward hook, registered once. At each forward pass the hook asks
    which setting runs: the innermost one entered by :meth:`HiddenStateNoise.activated`
    (``per_row`` and ``disabled`` enter it too), else the attached ones (a setting made with
    ``attach=True``: the model's own noise, on for any forward pass, as in training). So
    several classifiers with different noise can share one model's weights without re-attaching
    hooks, and a forward pass gets exactly the draws it would get with its hooks alone.
    """

    ATTRIBUTE = "_rsmi_noise_hooks"

    def __init__(self, blocks: nn.ModuleList) -> None:
        self.attached: list[HiddenStateNoise] = []
        self.running: list[HiddenStateNoise] = []
        for index, block in enumerate(blocks):
            block.register_forward_hook(functools.partial(self._hook, index))

    @classmethod
    def of(cls, blocks: nn.ModuleList) -> _ModelHooks:
        """The hooks of ``blocks``, registered on the first call."""
        hooks = getattr(blocks, cls.ATTRIBUTE, None)
        if hooks is None:
            hooks = cls(blocks)
            setattr(blocks, cls.ATTRIBUTE, hooks)
        return hooks

    def _hook(self, index: int, module: nn.Module, args: object, output: object) -> object:
        result = None
        for noise in self.running[-1:] or self.attached:
            noisy = noise._noised(index, module, output if result is None else result)
            if noisy is not None:
                result = noisy
        return result

    @contextlib.contextmanager
    def run(self, noise: HiddenStateNoise) -> Iterator[None]:
        self.running.append(noise)
        try:
            yield
        finally:
            popped = self.running.pop()
            assert popped is noise, "noise settings must be left in the order they were entered"


class HiddenStateNoise:
    """Adds N(0, σ²I) to the output hidden states of blocks ``i`` with ``i % noise_every == 0``.

    The noise is on in training and evaluation mode alike (RSMI's smoothed classifier is noisy
    at inference); :meth:`disabled` switches it off for a block of code.

    A model has one set of hooks (:class:`_ModelHooks`) whatever the number of settings.
    ``attach=True`` (the default) makes this setting the model's own: it noises every forward
    pass of the model, as hooks of its own would. ``attach=False`` (a classifier view's
    setting) noises only the forward passes inside :meth:`activated`, :meth:`per_row` or
    :meth:`disabled`, so views with other noise share the model without changing it.
    """

    def __init__(
        self, model: nn.Module, noise_std: float, noise_every: int, *, attach: bool = True
    ) -> None:
        self.blocks = find_encoder_blocks(model)
        self.noise_std = float(noise_std)
        self.noised_blocks = (
            [i for i in range(len(self.blocks)) if i % noise_every == 0] if noise_std > 0 else []
        )
        self._noised_set = frozenset(self.noised_blocks)
        self.enabled = True
        self.generator: torch.Generator | None = None
        self._rows: _RowNoise | None = None
        self._hooks = _ModelHooks.of(self.blocks)
        self.attached = False
        if attach:
            self._hooks.attached.append(self)
            self.attached = True

    def remove(self) -> None:
        """Detach this setting from the model (its forward passes no longer see it)."""
        if self.attached:
            self._hooks.attached.remove(self)
            self.attached = False

    @property
    def active(self) -> bool:
        running = self.attached or any(n is self for n in self._hooks.running)
        return self.enabled and running and self.noise_std > 0

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Within the block, the model's forward passes use this setting (and no other)."""
        with self._hooks.run(self):
            yield

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Run the model without noise (the deterministic base classifier)."""
        previous, self.enabled = self.enabled, False
        try:
            with self._hooks.run(self):
                yield
        finally:
            self.enabled = previous

    @contextlib.contextmanager
    def per_row(self, row_seeds: Sequence[int], attention_mask: torch.Tensor) -> Iterator[None]:
        """Within the block, row ``r`` of the next forward pass draws noise seeded by ``row_seeds[r]``."""
        if len(row_seeds) != attention_mask.shape[0]:
            raise InputError(
                f"{len(row_seeds)} row seeds for {attention_mask.shape[0]} rows of input"
            )
        device = attention_mask.device
        gens = [torch.Generator(device=device).manual_seed(int(s)) for s in row_seeds]
        mask = attention_mask.bool()
        counts = mask.sum(dim=1).tolist()
        previous, self._rows = self._rows, _RowNoise(gens, mask, counts)
        try:
            with self._hooks.run(self):
                yield
        finally:
            self._rows = previous

    def _noised(self, index: int, module: nn.Module, output: object) -> object:
        """Block ``index``'s output with this setting's noise added (``None``: unchanged)."""
        if index not in self._noised_set or not self.enabled or self.noise_std <= 0:
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        if not isinstance(hidden, torch.Tensor):
            raise TypeError(f"unexpected output of encoder block {type(module).__name__}")
        noisy = hidden + self.noise_std * self._draw(hidden)  # _draw returns hidden's dtype
        if isinstance(output, tuple):
            return (noisy, *output[1:])
        return noisy

    def _draw(self, hidden: torch.Tensor) -> torch.Tensor:
        rows = self._rows
        if rows is None:
            return torch.randn(
                hidden.shape, generator=self.generator, device=hidden.device, dtype=torch.float32
            ).to(hidden.dtype)
        if rows.attention_mask.shape != hidden.shape[:2]:
            raise RuntimeError(
                f"per-row noise set up for inputs of shape {tuple(rows.attention_mask.shape)} "
                f"but the block returned {tuple(hidden.shape[:2])}"
            )
        return _row_draw(rows, hidden.shape[-1], hidden.new_zeros(hidden.shape))

    def row_draws(
        self, row_seeds: Sequence[int], attention_mask: torch.Tensor, dim: int
    ) -> dict[int, torch.Tensor]:
        """``{block: noise_std · draw}`` (float32, rows × T × ``dim``) that the hooks add with
        :meth:`per_row` ``(row_seeds, attention_mask)``: the same generators, drawn in the same
        order (block after block), at the same positions. An inference engine
        (:mod:`rsmi.engine`) takes them as graph inputs, so the same seeds give the same noise.
        """
        if len(row_seeds) != attention_mask.shape[0]:
            raise InputError(
                f"{len(row_seeds)} row seeds for {attention_mask.shape[0]} rows of input"
            )
        device = attention_mask.device
        mask = attention_mask.bool()
        rows = _RowNoise(
            [torch.Generator(device=device).manual_seed(int(s)) for s in row_seeds],
            mask, mask.sum(dim=1).tolist(),
        )
        shape = (*mask.shape, dim)
        return {
            index: self.noise_std * _row_draw(rows, dim, torch.zeros(shape, device=device))
            for index in self.noised_blocks
        }


def _row_draw(rows: _RowNoise, dim: int, noise: torch.Tensor) -> torch.Tensor:
    """``noise`` (zeros) with row r's next draws at its real positions, in order.

    One scatter for the whole batch. Drawn in float32 whatever the compute dtype, so a seed
    gives the same noise under bfloat16 autocast as in float32.
    """
    flat = torch.empty((sum(rows.counts), dim), device=noise.device, dtype=torch.float32)
    offset = 0
    for gen, count in zip(rows.generators, rows.counts, strict=True):
        torch.randn((count, dim), generator=gen, out=flat[offset : offset + count])
        offset += count
    noise[rows.attention_mask] = flat.to(noise.dtype)
    return noise


class _PrefixCaptured(Exception):
    """Raised by the capture hook: the rest of the forward pass is not needed."""


def _take_rows(output: object, index: torch.Tensor, rows: int) -> object:
    """``output`` (a tensor or a tuple of them) with its batch rows gathered by ``index``."""
    if isinstance(output, torch.Tensor):
        return output.index_select(0, index) if output.dim() > 0 and output.shape[0] == rows else output
    if isinstance(output, tuple):
        return tuple(_take_rows(item, index, rows) for item in output)
    return output


def forward_sharing_prefix(
    model: nn.Module, noise: HiddenStateNoise, inputs: dict[str, torch.Tensor]
) -> object:
    """``model(**inputs)`` computing the embeddings and block 0 once per distinct input row.

    Monte-Carlo samples of one input differ only by the noise, which is first added to the
    output of block 0 (block ``i`` is noised when ``i % noise_every == 0``). Everything up to
    that point is the same for identical rows, so it runs once per distinct row (``k0`` copies
    in step 1, at most C(top_k, num_masks) masks among ``k1`` copies in step 2, ``n`` copies
    in CERTIFY) and is gathered back to all rows; the noise hooks then fire as usual, with the
    same per-row draws. The model's own ``forward`` is untouched: block 0's ``forward`` is
    shadowed for one call by a function returning the gathered output.
    """
    blocks = noise.blocks
    key = torch.cat([inputs[k] for k in sorted(inputs)], dim=1)
    unique, inverse = torch.unique(key, dim=0, return_inverse=True)
    rows = key.shape[0]
    if unique.shape[0] == rows:
        return model(**inputs)
    # One representative row per distinct input: its first occurrence.
    order = torch.arange(rows, device=key.device)
    first = torch.full((unique.shape[0],), rows, dtype=order.dtype, device=key.device)
    first = first.scatter_reduce(0, inverse, order, reduce="amin")
    captured: list[object] = []

    def capture(module: nn.Module, args: object, output: object) -> None:
        captured.append(output)
        raise _PrefixCaptured

    handle = blocks[0].register_forward_hook(capture)
    try:
        with noise.disabled():
            model(**{k: v.index_select(0, first) for k, v in inputs.items()})
    except _PrefixCaptured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError("block 0 did not run in the forward pass of the distinct rows")
    gathered = _take_rows(captured[0], inverse, unique.shape[0])
    blocks[0].forward = lambda *args, **kwargs: gathered
    try:
        return model(**inputs)
    finally:
        del blocks[0].forward


_MASK64 = (1 << 64) - 1


def row_seed(*keys: int) -> int:
    """A 63-bit seed that mixes integer keys (SplitMix64), e.g. (seed, row key, pass, sample)."""
    state = 0x9E3779B97F4A7C15
    for key in keys:
        state = (state ^ (int(key) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


def text_digest(text: str) -> int:
    """A stable 64-bit digest of a text: BLAKE2b-64 of its exact UTF-8 bytes.

    No normalisation: ``"x"`` and ``"x "`` are different texts. Lone surrogates (possible in a
    Python string, e.g. from JSON ``"\\ud800"``) are encoded as such rather than refused.
    """
    data = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def row_key(digest: int, occurrence: int) -> int:
    """The row key of seeding ``"text-v1"``: occurrence ``occurrence`` (0, 1, ...) of the text
    whose :func:`text_digest` is ``digest`` within one call. Its draws are
    ``row_seed(seed, row_key, pass, sample)``."""
    return row_seed(digest, occurrence)
