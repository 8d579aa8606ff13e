"""Readers that turn any supported source into normalised sentences (see types.LabelledData)."""
