"""gridbot: a fleet of grid-trading bots as systemd services."""
from .errors import (ConfigError, CredentialsError, ExchangeError, GridbotError, InstanceNotFound, JobFailed,
                     OrderRejected, PermissionDenied, SystemdUnavailable, UsageError)

__version__ = "0.1.0"
__all__ = ["GridConfig", "GridbotError", "ConfigError", "CredentialsError", "ExchangeError", "InstanceNotFound",
           "JobFailed", "OrderRejected", "PermissionDenied", "SystemdUnavailable", "UsageError", "__version__"]


def __getattr__(name: str):  # GridConfig pulls in pydantic: only pay for it when asked (`gridbot --help` doesn't)
    if name == "GridConfig":
        from .models import GridConfig

        return GridConfig
    raise AttributeError(name)
