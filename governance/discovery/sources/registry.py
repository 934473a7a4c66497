"""Which source module reads which kind of discovery source."""

from __future__ import annotations

from governance.discovery.sources.base import Source, SourceMisconfigured
from governance.discovery.sources.openbao import OpenBaoSource, OpenBaoSourceSettings
from governance.discovery.sources.postgres import PostgresSource, PostgresSourceSettings
from governance.discovery.sources.redis_acl import RedisSource, RedisSourceSettings
from governance.discovery.sources.repository import RepositorySettings, RepositorySource
from governance.discovery.sources.scanners import ScannerReportSource, ScannerSettings
from governance.models.discovery import DiscoverySourceKind

SOURCES = {
    DiscoverySourceKind.OPENBAO: (OpenBaoSourceSettings, OpenBaoSource),
    DiscoverySourceKind.POSTGRES: (PostgresSourceSettings, PostgresSource),
    DiscoverySourceKind.REDIS: (RedisSourceSettings, RedisSource),
    DiscoverySourceKind.REPOSITORY: (RepositorySettings, RepositorySource),
    DiscoverySourceKind.SCANNER_IMPORT: (ScannerSettings, ScannerReportSource),
}


def source_settings(source):
    """The typed settings of a source (SourceMisconfigured names what is wrong)."""
    try:
        settings_class, _ = SOURCES[source.kind]
    except KeyError:
        raise SourceMisconfigured(f"No discovery source reads {source.kind!r}.") from None
    return settings_class.from_source(source)


def source_reader(source) -> Source:
    _, reader_class = SOURCES[source.kind]
    return reader_class(source_settings(source))
