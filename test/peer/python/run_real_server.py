"""Starts the real Nexa-AI-Agents Flask app (its app.app.create_app) on loopback for the peer run.

Run with the exported source as the working directory (its code opens prompt files and logs/
by relative paths) and PYTHONPATH=<shim>:<source>, the shim first. The real run.py is not used: it
listens on 0.0.0.0 with the debug reloader.

  NEXA_PEER_PORT          port on 127.0.0.1 (required)
  NEXA_PEER_FIX_REPORT=1  call Report.send_successful_response's publisher with its arguments in
                          the order the publisher declares (see test/peer/README.md); off by default
"""
import os
import sys

os.makedirs("logs", exist_ok=True)

from app.app import create_app  # noqa: E402  (the real app)

if os.environ.get("NEXA_PEER_FIX_REPORT") == "1":
    from agents.hooks import report as real_report
    from app.extensions import redis_publisher

    def send_successful_response(self, response):
        result = {"description": response}
        redis_publisher.send_done_classification(self.channel, result, self.job_id)

    real_report.Report.send_successful_response = send_successful_response
    print("[peer] Report.send_successful_response: arguments in declared order", file=sys.stderr, flush=True)

port = int(os.environ["NEXA_PEER_PORT"])
print(f"[peer] real AI server on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
create_app().run(host="127.0.0.1", port=port, debug=False, threaded=True, use_reloader=False)
