"""Captum attributions, modality contributions and reasons for each prediction."""
