"""Column names of normalised data, whatever the user's columns were called: the contract between
the readers (`tokclf.data`), tokenization (`tokclf.text`), inference and the pipeline's stored
datasets."""

TOKENS = "tokens"
TAGS = "tags"
# 1-based line (column files, JSONL) or row (CSV, Parquet, HF datasets: 1-based record index)
# where the sentence starts in its source, so every problem can name its place.
LINE = "line"
# 0-based document index inside the split (CoNLL -DOCSTART- boundaries); 0 when the format has none.
DOCUMENT = "document"
# 0-based place of the sentence inside its DOCUMENT, -1 when the source has no documents (no
# -DOCSTART-/newdoc marker seen yet, tabular data without document_column, HF datasets). Document
# context (tokclf.text.context) joins row r to row r-1 only when both have the same DOCUMENT and
# SENTENCE goes up by exactly one, so a shuffled or carved split never borrows a stranger's text.
SENTENCE = "sentence"
# The data source a sentence came from (data_path as given), when data_path lists several sources;
# absent for a single source.
SOURCE = "source"
