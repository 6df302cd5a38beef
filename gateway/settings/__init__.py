"""The one typed, frozen configuration tree, and how it is loaded.

Precedence, highest first: environment (`GATEWAY_<SECTION>__<KEY>`), the YAML file
(`--config PATH`, else ./config/gateway.yaml when present), then each section's defaults,
which run as-is: the emulator as upstream, no keys needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.settings.emulator import EmulatorSettings, FaultKind, LatencyMode
from gateway.settings.metering import (
    MeteringSettings,
    ModelPriceSettings,
    PricingSettings,
    TierPriceSettings,
)
from gateway.settings.models import ModelOverride
from gateway.settings.rewrite import RewriteSettings
from gateway.settings.routing import (
    CanarySettings,
    RetrySettings,
    RoutingSettings,
    ShadowSettings,
    StepSettings,
)
from gateway.settings.section import Section
from gateway.settings.server import ProviderSettings, ProvidersSettings, ServerSettings
from gateway.settings.state import StateSettings, TeamBudgetSettings

__all__ = [
    "CanarySettings",
    "ConfigError",
    "EmulatorSettings",
    "FaultKind",
    "LatencyMode",
    "MeteringSettings",
    "ModelOverride",
    "ModelPriceSettings",
    "PricingSettings",
    "ProviderSettings",
    "ProvidersSettings",
    "RetrySettings",
    "RewriteSettings",
    "RoutingSettings",
    "Section",
    "ServerSettings",
    "Settings",
    "ShadowSettings",
    "StateSettings",
    "StepSettings",
    "TeamBudgetSettings",
    "TierPriceSettings",
    "config_path",
    "load_settings",
]

DEFAULT_CONFIG_PATH = Path("config/gateway.yaml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="GATEWAY_", env_nested_delimiter="__"
    )

    server: ServerSettings = ServerSettings()
    providers: ProvidersSettings = ProvidersSettings()
    emulator: EmulatorSettings = EmulatorSettings()
    rewrite: RewriteSettings = RewriteSettings()
    metering: MeteringSettings = MeteringSettings()
    pricing: PricingSettings = PricingSettings()
    state: StateSettings = StateSettings()
    routing: RoutingSettings = RoutingSettings()
    # Entries added to or replacing the packaged model catalog (gateway/catalog/models.yaml).
    models: tuple[ModelOverride, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A configuration that cannot run, with a message naming the bad field."""


def config_path(path: Path | None) -> Path | None:
    """The YAML file that applies: the one named, else ./config/gateway.yaml if present."""
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    return path


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path` (or ./config/gateway.yaml if it exists) and the environment."""
    path = config_path(path)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc


def _describe(exc: ValidationError, path: Path | None) -> str:
    source = f"{path} and GATEWAY_* environment" if path else "GATEWAY_* environment"
    lines = [
        f"  {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()
    ]
    return "\n".join([f"in {source}:", *lines])
