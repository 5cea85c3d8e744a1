"""Typed settings: one object from TOML and CENTRALITA_* environment variables."""

from config.settings import Secret, Settings, SettingsError, load_settings

__all__ = ["Secret", "Settings", "SettingsError", "load_settings"]
