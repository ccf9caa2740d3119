"""rsmi: Randomized Smoothing with Masked Inference (Moon et al., ACL 2023) for robust
transformer text classifiers, with an honest robustness evaluation."""

from rsmi.classifier import (
    ABSTAIN,
    Certification,
    EmptyTextError,
    ModelLoadError,
    Prediction,
    RSMIClassifier,
)
from rsmi.config import RSMIConfig
from rsmi.hf_pipeline import TextClassificationPipeline, text_classification_pipeline
from rsmi.inference import StreamSeed
from rsmi.integrity import NonFiniteOutputError

__all__ = [
    "ABSTAIN",
    "Certification",
    "EmptyTextError",
    "ModelLoadError",
    "NonFiniteOutputError",
    "Prediction",
    "RSMIClassifier",
    "RSMIConfig",
    "StreamSeed",
    "TextClassificationPipeline",
    "text_classification_pipeline",
]
__version__ = "0.1.0"
