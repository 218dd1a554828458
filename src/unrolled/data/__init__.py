"""Data: file readers (TSV/CSV/JSONL/TXT, gzip), label maps and padded, length-bucketed batches."""

from unrolled._lazy import lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
    from unrolled.data.batching import length_bucketed_batches, pad_batch
    from unrolled.data.readers import DataError, LabelMap, SkippedRow, TextDataset, read_dataset, read_text

# public name -> the module of unrolled.data that defines it (imported on first use: a batch needs no reader)
_LAZY = {"length_bucketed_batches": "batching", "pad_batch": "batching", "DataError": "readers",
         "LabelMap": "readers", "SkippedRow": "readers", "TextDataset": "readers", "read_dataset": "readers",
         "read_text": "readers"}

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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
