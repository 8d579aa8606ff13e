"""Evaluation room: word-level scores (`metrics`, seqeval at the entity level), scoring a model on
a split through the inference room's one forward pass (`scoring`), and plots (`plots`)."""
