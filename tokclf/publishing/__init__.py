"""Publishing room: what a model folder holds besides the weights (`folder`: parameters, metrics,
reports), the model card (`card`) and the quality-gated Hub upload (`hub`)."""
