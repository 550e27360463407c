"""The options a database URL may carry (`?name=value`) for each driver, and whether their
values read: a URL the driver would choke on at every connect is refused at start-up instead."""

from collections.abc import Callable

from sqlalchemy import URL


def _one_of(*accepted: str) -> Callable[[str], bool]:
    return lambda value: value in accepted


def _whole_number(value: str) -> bool:
    return all(part.strip().isdigit() for part in value.split(","))  # a list for several hosts


def _seconds(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


def _anything(value: str) -> bool:
    return True


_SSL_MODES = _one_of("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_LIBPQ_TEXT = (
    "host",
    "hostaddr",
    "user",
    "password",
    "passfile",
    "service",
    "options",
    "application_name",
    "fallback_application_name",
    "client_encoding",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslkeylogfile",
    "requirepeer",
    "require_auth",
    "min_protocol_version",
    "max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
)
_LIBPQ_NUMBERS = (
    "port",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
)
# The options (?name=value) a DATABASE_URL may carry for each driver, and whether a value reads.
# SQLAlchemy hands asyncpg each option as a keyword argument, as text: only those that take text
# are here. psycopg hands them to libpq, which knows these names.
_URL_OPTIONS: dict[str, dict[str, Callable[[str], bool]]] = {
    "asyncpg": {
        "host": _anything,
        "port": _whole_number,
        "ssl": _SSL_MODES,
        "target_session_attrs": _one_of(
            "any", "primary", "standby", "read-write", "read-only", "prefer-standby"
        ),
        "command_timeout": _seconds,
        "prepared_statement_cache_size": _whole_number,
        "passfile": _anything,
        "service": _anything,
        "servicefile": _anything,
        "krbsrvname": _anything,
        "gsslib": _one_of("gssapi", "sspi"),
    },
    "psycopg": {
        **dict.fromkeys(_LIBPQ_TEXT, _anything),
        **dict.fromkeys(_LIBPQ_NUMBERS, _whole_number),
        "sslmode": _SSL_MODES,
        "target_session_attrs": _one_of(
            "any", "read-write", "read-only", "primary", "standby", "prefer-standby"
        ),
        "channel_binding": _one_of("disable", "prefer", "require"),
        "gssencmode": _one_of("disable", "prefer", "require"),
        "sslnegotiation": _one_of("postgres", "direct"),
        "sslcertmode": _one_of("disable", "allow", "require"),
        "load_balance_hosts": _one_of("disable", "random"),
    },
}
# Options the settings own: the URL's would be overridden or never read.
_SETTINGS_OPTIONS = {"connect_timeout": "DB_CONNECT_TIMEOUT", "timeout": "DB_CONNECT_TIMEOUT"}


def url_option_problem(url: URL, driver: str) -> str | None:
    """What is wrong with the URL's options for the driver, in one line (values never shown:
    one may be a password)."""
    accepted = _URL_OPTIONS[driver]
    for name, values in url.query.items():
        if name in _SETTINGS_OPTIONS:
            return f"the option {name} is set by {_SETTINGS_OPTIONS[name]}, not in the URL"
        if name not in accepted:
            return f"{driver} does not accept the option {name}"
        for value in (values,) if isinstance(values, str) else values:
            if not accepted[name](value):
                return f"the option {name} has a value {driver} cannot use"
    return None
