"""Prediction service, FastAPI, Streamlit dashboard, model registry use and the CLI."""
