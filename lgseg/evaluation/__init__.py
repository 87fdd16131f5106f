"""ScanNet200 evaluation: confusion matrix, head/common/tail scores and benchmark-format files."""

from lgseg.evaluation.benchmark import evaluate_dirs, read_benchmark_file, write_benchmark_file
from lgseg.evaluation.confusion import confusion_matrix
from lgseg.evaluation.metrics import (
    SegmentationMetrics,
    class_scores,
    per_class_rows,
    summarize,
    write_metrics,
)

__all__ = [
    "SegmentationMetrics",
    "class_scores",
    "confusion_matrix",
    "evaluate_dirs",
    "per_class_rows",
    "read_benchmark_file",
    "summarize",
    "write_benchmark_file",
    "write_metrics",
]
