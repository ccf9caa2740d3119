"""The name of every file rsmi writes: one declaration, imported everywhere.

Formats and keys: docs/protocol.md. Change a name here, never by a second literal elsewhere.
"""

from __future__ import annotations

# ---------------------------------------------------------------- a saved model directory
MODEL_CARD_FILE = "rsmi.json"  # the rsmi model card: method, RSMI settings, labels, digests
HF_CONFIG_FILE = "config.json"  # the transformers model config
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "vocab.json", "merges.txt", "added_tokens.json", "sentencepiece.bpe.model", "spiece.model",
)
README_FILE = "README.md"  # the Hugging Face style model card (generated)

# ---------------------------------------------------------------- a training run (= model dir)
TRAINING_CONFIG_FILE = "training_config.json"
TRAINING_LOG_FILE = "log.jsonl"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE_FILE = "state.json"

# ---------------------------------------------------------------- an evaluation
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.jsonl"

# ---------------------------------------------------------------- an attack run
EXAMPLES_FILE = "examples.jsonl"  # one record per attacked example, appended as each is done
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"  # the run's identity (config, selection, weights digest)

# ---------------------------------------------------------------- a pipeline run
PIPELINE_FILE = "pipeline.json"
PIPELINE_REPORT_FILE = "report.md"
PIPELINE_PLOT_FILE = "results.png"
PIPELINE_HTML_FILE = "report.html"  # the HTML report (rsmi report --html) of the run

# ---------------------------------------------------------------- run ownership (rsmi.rundir)
RUN_MARKER_FILE = ".rsmi-run.json"
RUN_LOCK_FILE = ".rsmi-run.lock"
RUN_HOLDER_FILE = ".rsmi-run.holder.json"

# ---------------------------------------------------------------- an exported inference graph
# (rsmi.engine: $RSMI_HOME/engine/<key>/, one directory per weights, engine, precision, opset)
ENGINE_META_FILE = "engine.json"  # what the graph was exported from (the cache key's fields)
ENGINE_ONNX_FILE = "model.onnx"  # ONNX Runtime's graph
ENGINE_IR_FILE = "model.xml"  # OpenVINO's graph (its weights beside it, model.bin)
