"""Braze instances (clusters) and their REST hosts."""

from __future__ import annotations

from types import MappingProxyType

# Braze has never had a US-09; its absence here is deliberate.
INSTANCE_HOSTS: MappingProxyType[str, str] = MappingProxyType(
    {
        **{f"US-0{n}": f"rest.iad-0{n}.braze.com" for n in range(1, 9)},
        "US-10": "rest.us-10.braze.com",
        "EU-01": "rest.fra-01.braze.eu",
        "EU-02": "rest.fra-02.braze.eu",
        "AU-01": "rest.au-01.braze.com",
        "ID-01": "rest.id-01.braze.com",
        "JP-01": "rest.jp-01.braze.com",
        "KR-01": "rest.kr-01.braze.com",
    }
)


class UnknownBrazeInstanceError(ValueError):
    """The instance name is not one Braze operates."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        super().__init__(
            f"unknown Braze instance {instance!r}; expected one of {', '.join(INSTANCE_HOSTS)}"
            " (or give the REST endpoint URL itself)"
        )


def rest_endpoint(instance: str) -> str:
    """The https base URL of an instance's REST API, e.g. ``US-03`` -> ``https://rest.iad-03.braze.com``."""
    host = INSTANCE_HOSTS.get(instance.strip().upper())
    if host is None:
        raise UnknownBrazeInstanceError(instance)
    return f"https://{host}"
