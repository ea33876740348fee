"""The front door's ASGI app: agent cards and the A2A v1.0 JSON-RPC endpoints.

Routes (all on 127.0.0.1:<port>, behind :class:`memesh.a2a.security.Guard`)::

    GET  /.well-known/agent-card.json                 the hub: one skill per online agent
    POST /                                            JSON-RPC; the agent is named by ``tenant``
    GET  /agents/<name>/.well-known/agent-card.json   one agent (a window)
    POST /agents/<name>/                              JSON-RPC for that agent

JSON-RPC comes from the a2a-sdk (``create_jsonrpc_routes``: parsing, the ``A2A-Version``
rule, error codes, SSE); memesh supplies the task store, the executor and the rules of
:class:`~memesh.a2a.engine.HubRequestHandler`. Cards carry a weak ``ETag`` of their JSON
and answer ``If-None-Match`` with 304.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from memesh._version import __version__
from memesh.a2a.executor import AGENT

SCHEME = "memeshToken"


class AgentContextBuilder(DefaultServerCallContextBuilder):
    """Puts the agent named by the URL into the call context."""

    def build(self, request: Request):
        context = super().build(request)
        name = request.path_params.get("name")
        if name:
            context.state[AGENT] = name
        context.state.get("headers", {}).pop("authorization", None)   # the token stays out of task data
        return context


def _base_card(name: str, description: str, url: str, skills: list[AgentSkill]) -> AgentCard:
    requirement = SecurityRequirement()
    requirement.schemes[SCHEME].SetInParent()
    return AgentCard(
        name=name,
        description=description,
        version=__version__,
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes={SCHEME: SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(
            scheme="bearer", description="the token `memesh a2a token` prints"))},
        security_requirements=[requirement],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
    )


def _skill(agent: dict) -> AgentSkill:
    tags = ["claude-code", "window"]
    return AgentSkill(id=agent["name"], name=agent["name"], description=agent["description"], tags=tags,
                      examples=[f"Ask the {agent['name']} window to review or change something in its project"])


def hub_card(base_url: str, agents: list[dict]) -> AgentCard:
    online = [a for a in agents if a["online"]]
    return _base_card(
        "memesh",
        "The memesh hub of this machine: each skill is a Claude Code window, online now. Post a task to "
        "/agents/<name>/ (or here, with tenant = <name>); the window answers it.",
        base_url, [_skill(a) for a in online])


def handler_card(base_url: str) -> AgentCard:
    """The card the SDK's request handler checks capabilities on (streaming yes, push no)."""
    return _base_card("memesh", "memesh A2A hub", base_url, [_skill({"name": "windows", "description": "Claude Code windows"})])


def agent_card(base_url: str, agent: dict) -> AgentCard:
    state = "online" if agent["online"] else "offline: tasks wait in its inbox until it returns"
    return _base_card(agent["name"], f"{agent['description']} ({state})", f"{base_url}agents/{agent['name']}/",
                      [_skill(agent)])


def card_response(request: Request, card: AgentCard) -> Response:
    body = agent_card_to_dict(card)
    body.setdefault("skills", [])   # required by the spec, even while no window is online
    tag = 'W/"' + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest() + '"'
    asked = request.headers.get("if-none-match", "")
    if asked and any(c.strip().removeprefix("W/") == tag.removeprefix("W/") or c.strip() == "*" for c in asked.split(",")):
        return Response(status_code=304, headers={"ETag": tag})
    return JSONResponse(body, headers={"ETag": tag, "Cache-Control": "no-cache"})


def build_app(handler: Any, registry: Any, port: int) -> Starlette:
    base_url = f"http://127.0.0.1:{port}/"

    async def root_card(request: Request) -> Response:
        return card_response(request, hub_card(base_url, registry.agents()))

    async def one_card(request: Request) -> Response:
        agent = registry.agent(request.path_params["name"])
        if agent is None:
            return JSONResponse({"error": f"no agent named {request.path_params['name']!r} on this hub"}, status_code=404)
        return card_response(request, agent_card(base_url, agent))

    builder = AgentContextBuilder()
    routes = [
        Route("/.well-known/agent-card.json", root_card, methods=["GET"]),
        Route("/agents/{name}/.well-known/agent-card.json", one_card, methods=["GET"]),
        *create_jsonrpc_routes(handler, "/", context_builder=builder),
        *create_jsonrpc_routes(handler, "/agents/{name}/", context_builder=builder),
        *create_jsonrpc_routes(handler, "/agents/{name}", context_builder=builder),
    ]
    return Starlette(routes=routes)
