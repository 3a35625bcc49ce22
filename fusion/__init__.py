"""The fused model, its heads, training, evaluation and the baseline scores."""
