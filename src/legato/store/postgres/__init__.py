"""The PostgreSQL store, for many workers on many hosts (``pip install 'legato[postgres]'``)."""

from ...errors import ConfigurationError

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ConfigurationError(
        "PostgreSQL support needs psycopg: pip install 'legato[postgres]'"
    ) from missing

from .store import PostgresStore

__all__ = ["PostgresStore"]
