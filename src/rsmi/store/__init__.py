"""What rsmi writes to disk, owned in one place.

* :mod:`rsmi.store.atomic` — the one atomic writer (text, JSON, bytes: temporary file, fsync,
  rename) and the one durable JSON-lines appender; checks that an output path is a regular file
  that may be replaced.
* :mod:`rsmi.store.names` — the name of every file a model directory or a run holds.
* :mod:`rsmi.store.model_card` — the model directory card ``rsmi.json`` (read, verify, write;
  digests of every file that changes an answer) and the training records beside it (did the
  run finish, did it learn, which CPU trained it).
* :mod:`rsmi.store.evaluation` — ``evaluation.json`` + ``predictions.jsonl``: one writer, one
  reader, and which existing files may be replaced.

Every other module imports these instead of re-declaring a name or writing a file by hand.
File formats and metric keys are described in docs/protocol.md.
"""

from rsmi.store.atomic import (
    JsonlWriter,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_output_file,
    dump_json,
    publish_directory,
)

__all__ = [
    "JsonlWriter",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_file",
    "dump_json",
    "publish_directory",
]
