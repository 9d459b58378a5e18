"""Evaluation tools: the factor predictor (labels and measures directions) and Fréchet distances."""

from .fid import feature_statistics, frechet_distance
from .predictor import FactorPredictor
from .predictor_training import evaluate_predictor, train_predictor

__all__ = [
    "FactorPredictor",
    "evaluate_predictor",
    "feature_statistics",
    "frechet_distance",
    "train_predictor",
]
