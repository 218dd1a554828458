"""Data: file readers (TSV/CSV/JSONL/TXT, gzip), label maps and padded, length-bucketed batches."""

from unrolled.data.batching import length_bucketed_batches, pad_batch
from unrolled.data.readers import DataError, LabelMap, SkippedRow, TextDataset, read_dataset, read_text

__all__ = [
    "DataError",
    "LabelMap",
    "SkippedRow",
    "TextDataset",
    "length_bucketed_batches",
    "pad_batch",
    "read_dataset",
    "read_text",
]
