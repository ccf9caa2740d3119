"""The one shape every data source is turned into: labelled texts in named splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rsmi.errors import DataError

SPLIT_NAMES = ("train", "dev", "test")
ALL_SPLIT = "all"  # every example of a dataset (``--split all``: a whole file, unsplit)


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
        """The examples of split ``name``; DataError naming the available splits otherwise.

        ``"all"`` is every example: the dataset's own ``all`` split when it was loaded whole
        (a file in its row order), else train, dev and test one after the other.
        """
        if name == ALL_SPLIT and name not in self.splits:
            return [ex for s in self.splits.values() for ex in s]
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no split {name!r}; available splits: "
                f"{', '.join(self.splits) or '(none)'}"
            )
        return self.splits[name]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def with_label_names(self, names: Sequence[str]) -> TextDataset:
        """The same examples with the label ids of ``names`` (a model's classes), by name.

        The data may hold fewer classes than ``names`` (a test file without one class); a
        label ``names`` does not hold is a DataError naming it.
        """
        names = [str(n) for n in names]
        if list(self.label_names) == names:
            return self
        index = {n: i for i, n in enumerate(names)}
        unknown = [n for n in self.label_names if n not in index]
        if unknown:
            raise DataError(
                f"dataset {self.name!r} has the label(s) {unknown}, which the model does not "
                f"know (its classes are {names}): evaluate on data labelled with the model's "
                "classes, or train a model on these labels"
            )
        remap = [index[n] for n in self.label_names]
        splits = {s: [Example(ex.text, remap[ex.label]) for ex in exs]
                  for s, exs in self.splits.items()}
        info = {**self.info, "label_names": names, "data_label_names": list(self.label_names)}
        return TextDataset(name=self.name, label_names=names, splits=splits, info=info)

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per split and label name (every label listed, zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for split_name, examples in self.splits.items():
            tally = Counter(ex.label for ex in examples)
            out[split_name] = {n: tally.get(i, 0) for i, n in enumerate(self.label_names)}
        return out


def check_training_classes(
    examples: Sequence[Example], label_names: Sequence[str], source: str
) -> None:
    """DataError when the examples a model will be trained on hold fewer than two classes.

    A classifier trained on one class learns nothing, and the learning check would only say so
    after the training, as if the learning rate were to blame. ``source`` names the data.
    """
    present = sorted({ex.label for ex in examples})
    if len(present) >= 2 or not examples:
        return
    only = label_names[present[0]] if 0 <= present[0] < len(label_names) else present[0]
    raise DataError(
        f"the training split of {source} has only class {only!r} ({len(examples)} examples) "
        f"of {list(label_names)}: a classifier cannot learn from one class; check the label "
        "and split columns of the data (a given split column must put every class in train), "
        "or train on more examples (--max-examples)"
    )
