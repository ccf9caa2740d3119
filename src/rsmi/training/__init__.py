"""Training (``base``, ``rsmi``, ``freelb``) and clean evaluation of RSMI models.

``train(TrainConfig) -> Path`` writes a model directory that ``RSMIClassifier.from_pretrained``
loads; ``evaluate`` measures clean accuracy the way the model is deployed (two-step
prediction for RSMI).
"""

from rsmi.training.config import TrainConfig, load_config_file
from rsmi.training.evaluate import evaluate
from rsmi.training.run import StepInfo, TrainingInterrupted, TrainingRun
from rsmi.training.steps import freelb_step, rsmi_inputs, rsmi_training_step
from rsmi.training.trainer import train

__all__ = [
    "StepInfo",
    "TrainConfig",
    "TrainingInterrupted",
    "TrainingRun",
    "evaluate",
    "freelb_step",
    "load_config_file",
    "rsmi_inputs",
    "rsmi_training_step",
    "train",
]
