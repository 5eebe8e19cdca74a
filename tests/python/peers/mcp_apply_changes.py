"""The guide's `apply_changes` MCP tool on the official mcp SDK, for
Signoff's interop tests. Every call is appended as one JSON line to the file
named by APPLIED_LOG, so a test can count executions. Changes holding
`"fail": true` are refused with a tool error (isError).

Runs over stdio by default; `--http` serves streamable HTTP on a free port
of 127.0.0.1 and prints `listening on http://127.0.0.1:PORT/mcp`.
"""

import json
import os
import socket
import sys
import threading
import time

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("apply-changes", log_level="WARNING")


@server.tool()
def apply_changes(changes: dict, idempotency_key: str | None = None) -> dict:
    """Applies policy changes (appends them to the applied log)."""
    if changes.get("fail") is True:
        raise ToolError("the policy store refused these changes")
    entry = {"changes": changes, "idempotency_key": idempotency_key}
    with open(os.environ["APPLIED_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    return {"applied": True, "changes": changes}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def announce_when_up(port: int) -> None:
    """Prints the URL once the port accepts connections (run() blocks)."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)


if __name__ == "__main__":
    if "--http" in sys.argv:
        port = free_port()
        threading.Thread(target=announce_when_up, args=(port,), daemon=True).start()
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()
