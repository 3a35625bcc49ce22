"""Flower ServerApp / ClientApp around the shared Lightning module, and the strategy."""
