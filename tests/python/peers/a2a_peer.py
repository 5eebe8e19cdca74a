"""A tiny A2A 1.0 agent server on the official a2a-sdk, for Signoff's interop tests.

`serve(name, answer)` starts an agent whose every message is answered by
`answer(task: dict) -> dict` (sent back as a data part of a completed task's
artifact), or fails the task when `answer` raises `AgentFailure`. It binds a
free port on 127.0.0.1 and prints `listening on http://127.0.0.1:PORT` once
it accepts connections.
"""

import asyncio
import socket
import sys
import uuid

import uvicorn
from starlette.applications import Starlette

from a2a.helpers import get_data_parts, new_data_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes.agent_card_routes import create_agent_card_routes
from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
)


class AgentFailure(Exception):
    """Raised by an answer function to fail the task with a message."""


class _Executor(AgentExecutor):
    def __init__(self, answer):
        self._answer = answer

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        data = get_data_parts(message.parts) if message else []
        task = data[0] if data and isinstance(data[0], dict) else {}
        task_id = context.task_id or str(uuid.uuid4())
        context_id = context.context_id or str(uuid.uuid4())
        try:
            result = self._answer(task)
        except AgentFailure as failure:
            status = TaskStatus(
                state=TaskState.TASK_STATE_FAILED,
                message=Message(
                    role=Role.ROLE_AGENT,
                    message_id=str(uuid.uuid4()),
                    parts=[Part(text=str(failure))],
                ),
            )
            await event_queue.enqueue_event(Task(id=task_id, context_id=context_id, status=status))
            return
        artifact = Artifact(
            artifact_id=str(uuid.uuid4()),
            name="answer",
            parts=[new_data_part(result, media_type="application/json")],
        )
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
                artifacts=[artifact],
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


def serve(name: str, description: str, answer) -> None:
    """Runs the agent until killed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name=name,
        description=description,
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=[AgentSkill(id=name, name=name, description=description, tags=["signoff-test"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=_Executor(answer),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, rpc_url="/")
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, log_level="warning")
    server = uvicorn.Server(config)

    async def main():
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"listening on {url}", flush=True)
        await serving

    asyncio.run(main())
    sys.exit(0)
