"""The model zoo: every colorization model registered by its CLI name with its dataclass config.

Also the one checkpoint format and inference-time folding; built on the colour core and photos (atomic writes)."""

import dataclasses
from collections.abc import Mapping
from typing import Any

from colorize_cli.models.autoencoder import AutoencoderConfig, AutoencoderModel
from colorize_cli.models.base import ColorizationModel
from colorize_cli.models.classification import ClassificationConfig, ClassificationModel
from colorize_cli.models.cnn import CnnConfig, CnnModel
from colorize_cli.models.gan import GanConfig, GanGenerator
from colorize_cli.models.regression import RegressionConfig, RegressionModel

_REGISTRY: dict[str, tuple[type[ColorizationModel], type]] = {
    "cnn": (CnnModel, CnnConfig),
    "regression": (RegressionModel, RegressionConfig),
    "classification": (ClassificationModel, ClassificationConfig),
    "autoencoder": (AutoencoderModel, AutoencoderConfig),
    "gan": (GanGenerator, GanConfig),
}

MODEL_NAMES = tuple(_REGISTRY)


def _entry(name: str) -> tuple[type[ColorizationModel], type]:
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}.")
    return _REGISTRY[name]


def config_class(name: str) -> type:
    """The dataclass holding the hyper-parameters of model `name`."""
    return _entry(name)[1]


def build_model(name: str, config: Mapping[str, Any] | None = None) -> ColorizationModel:
    """A freshly initialised model `name`; `config` overrides its defaults (as saved in checkpoints)."""
    model_class, config_cls = _entry(name)
    values = dict(config or {})
    known = {field.name for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"Unknown config key(s) for model {name!r}: {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(known)) or 'none'}."
        )
    return model_class(config_cls(**values))
