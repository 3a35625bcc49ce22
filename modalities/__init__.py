"""One encoder per modality, and the tensors each one reads."""
