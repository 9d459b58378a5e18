"""Evaluation tools: the factor predictor (labels and measures directions), Fréchet distances, and the
comparison of direction sets: RCA, boundary agreement, re-scoring and their report."""

from .agreement import Agreement, boundary_agreement
from .fid import feature_statistics, frechet_distance
from .predictor import FactorPredictor
from .predictor_training import evaluate_predictor, train_predictor
from .rca import RCAResult, reconstructor_classification_accuracy
from .report import write_report
from .rescoring import RescoringResult, rescore_directions

__all__ = [
    "Agreement",
    "FactorPredictor",
    "RCAResult",
    "RescoringResult",
    "boundary_agreement",
    "evaluate_predictor",
    "feature_statistics",
    "frechet_distance",
    "reconstructor_classification_accuracy",
    "rescore_directions",
    "train_predictor",
    "write_report",
]
