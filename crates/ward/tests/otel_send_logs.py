"""Ships log records to ward with the OpenTelemetry Python SDK's own OTLP/HTTP log exporter, as
a service would: its defaults (protobuf), optionally gzipped.

usage: otel_send_logs.py ENDPOINT TOKEN gzip|none MESSAGE...
Exit 0 when the exporter reports success, 1 when it does not, 3 when the SDK is not installed.
"""

import logging
import sys

try:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
except ImportError as missing:
    print(f"the OpenTelemetry SDK is not installed ({missing});", end="")
    sys.exit(3)


class Recording(OTLPLogExporter):
    """The SDK's exporter, remembering whether every export succeeded."""

    failed = False

    def export(self, batch):
        result = super().export(batch)
        # (The result's enum was renamed across SDK versions; its members were not.)
        if getattr(result, "name", None) != "SUCCESS":
            print(f"export: {result!r}", file=sys.stderr)
            Recording.failed = True
        return result


def main():
    # The exporter says why an export failed through logging: to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    endpoint, token, compression, *messages = sys.argv[1:]
    exporter = Recording(
        endpoint=endpoint,
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
        timeout=10,
    )
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout-web"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("checkout")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    for message in messages:
        logger.error(message)
    provider.shutdown()
    sys.exit(1 if Recording.failed else 0)


main()
