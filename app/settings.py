"""Service settings: ``configs/app.yaml`` overridden by ``CARDIORISK_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import PROJECT_ROOT, load_yaml


class AppSettings(BaseSettings):
    """Where the service listens and which models it serves."""

    model_config = SettingsConfigDict(env_prefix="CARDIORISK_", protected_namespaces=())

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dashboard_port: int = 8501
    models_dir: str = "var/models"
    model_version: str | None = None
    language: Literal["en", "vi"] = "en"
    max_upload_mb: float = 20
    explanations_kept: int = 128
    explanations_minutes: float = 60

    def models_path(self) -> Path:
        """The model registry folder (absolute)."""
        path = Path(self.models_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path


def load_settings() -> AppSettings:
    """Settings from ``configs/app.yaml``; environment variables take precedence."""
    import os

    defaults = load_yaml("app")
    overridden = {
        key: value
        for key, value in defaults.items()
        if f"CARDIORISK_{key.upper()}" not in os.environ
    }
    return AppSettings(**overridden)
