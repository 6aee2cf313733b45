"""An OTLP/HTTP metrics receiver for vigilo's export tests.

Decodes each POSTed body with the OpenTelemetry project's published protobuf schema (the
`opentelemetry-proto` package from PyPI, not the code under test), answers 200 with an empty
ExportMetricsServiceResponse, and prints each request as one line of JSON (protobuf's own
JSON mapping) on stdout. The first line is the port it listens on (127.0.0.1). Ends when its
stdin closes (the test dropped it) or after 120 s.
"""

import http.server
import json
import sys
import threading

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        line = {
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "request": MessageToDict(request),
        }
        print(json.dumps(line), flush=True)
        reply = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Timer(120, lambda: sys.exit(0)).start()
sys.stdin.read()
