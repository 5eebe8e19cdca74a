"""The guide's `apply_changes` MCP tool on the official mcp SDK (2.3.0), for
Signoff's interop tests.

Every successful call is appended as one JSON line
(`{"changes": ..., "idempotency_key": ...}`) to the file named by
`--log PATH` or else by the environment variable APPLIED_LOG, so a test can
count executions. Changes holding `"fail": true` are refused with a
ToolError, which the SDK turns into a result with `isError: true`; changes
holding `"sleep": SECONDS` make the call that slow (for timeout tests).

Runs over stdio by default. `--http [PORT]` serves streamable HTTP on
127.0.0.1 (on a free port when PORT is missing or 0) and prints
`listening on http://127.0.0.1:PORT/mcp` once the port accepts connections.
"""

import argparse
import json
import os
import socket
import threading
import time

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("apply-changes", log_level="WARNING")
applied_log: str | None = None


@server.tool()
def apply_changes(changes: dict, idempotency_key: str | None = None) -> dict:
    """Applies policy changes (appends them to the applied log)."""
    if changes.get("fail") is True:
        raise ToolError("the policy store refused these changes")
    if isinstance(changes.get("sleep"), (int, float)):
        time.sleep(changes["sleep"])
    log = applied_log or os.environ["APPLIED_LOG"]
    entry = {"changes": changes, "idempotency_key": idempotency_key}
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
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


def main() -> None:
    global applied_log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="the applied log (default: $APPLIED_LOG)")
    parser.add_argument(
        "--http",
        nargs="?",
        const=0,
        type=int,
        metavar="PORT",
        help="serve streamable HTTP instead of stdio",
    )
    args = parser.parse_args()
    applied_log = args.log
    if args.http is None:
        server.run()
        return
    port = args.http or free_port()
    threading.Thread(target=announce_when_up, args=(port,), daemon=True).start()
    server.run("streamable-http", host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
