"""Training room: one training path for `tokclf train` and the pipeline's train stage (`run`),
the Trainer subclass and its arguments, the batch sampler, the row-sparse embedding optimizer,
CPU fast dropout and the experiment-tracker environment."""
