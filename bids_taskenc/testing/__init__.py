"""Synthetic BOLD5000-shaped data with a planted truth, for tests and the demo."""

from .synthetic import CLUSTERS, NULL_SPACE, ROIS, SyntheticDataset, make_synthetic_dataset

__all__ = ["CLUSTERS", "NULL_SPACE", "ROIS", "SyntheticDataset", "make_synthetic_dataset"]
