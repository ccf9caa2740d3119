"""The one shape every data source is turned into: labelled texts in named splits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rsmi.errors import DataError

SPLIT_NAMES = ("train", "dev", "test")


class DatasetUnavailableError(DataError):
    """A named dataset cannot be loaded here (e.g. a Hugging Face dataset while offline)."""


@dataclass(frozen=True)
class Example:
    """One labelled text; ``label`` indexes the dataset's ``label_names``."""

    text: str
    label: int


@dataclass
class TextDataset:
    """A labelled text-classification corpus split into ``train`` / ``dev`` / ``test``.

    ``info`` records provenance (source, checksums), the split policy (seed, fractions) and
    the counts per split and label, so that any result can name exactly the data it used.
    """

    name: str
    label_names: list[str]
    splits: dict[str, list[Example]]
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        """The examples of split ``name``; ValueError naming the available splits otherwise."""
        if name not in self.splits:
            raise ValueError(
                f"dataset {self.name!r} has no split {name!r}; available splits: "
                f"{', '.join(self.splits) or '(none)'}"
            )
        return self.splits[name]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per split and label name (every label listed, zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for split_name, examples in self.splits.items():
            tally = Counter(ex.label for ex in examples)
            out[split_name] = {n: tally.get(i, 0) for i, n in enumerate(self.label_names)}
        return out
