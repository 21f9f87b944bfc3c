"""An MCP client built on the official Python SDK, used by the end-to-end tests.

Usage: python_client.py URL MODE TOKEN TOOL ARGS_JSON
MODE is "legacy" (2025-11-25) or "2026-07-28". Prints one JSON object: the negotiated protocol
version, the tools the caller sees, and the call's result or JSON-RPC error. With
SWITCHBOARD_ELICIT=accept or decline the client answers elicitation requests so (and records the
questions it was asked); without it, the client does not support elicitation.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client, MCPError, types
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, mode: str, token: str, tool: str, args: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    out: dict = {}
    answer = os.environ.get("SWITCHBOARD_ELICIT")
    asked: list = []

    async def elicit(context, params):
        asked.append(params.message)
        if answer != "accept":
            return types.ElicitResult(action=answer)
        # Say yes to every yes/no question of the form.
        schema = params.requested_schema
        properties = schema.get("properties", {}) if isinstance(schema, dict) else schema.properties
        content = {name: True for name, spec in properties.items() if (spec.get("type") if isinstance(spec, dict) else spec.type) == "boolean"}
        return types.ElicitResult(action="accept", content=content)

    options = {"elicitation_callback": elicit} if answer else {}
    async with Client(streamable_http_client(url, http_client=http), mode=mode, **options) as client:
        out["protocol_version"] = str(client.protocol_version)
        listed = await client.list_tools()
        out["tools"] = sorted(t.name for t in listed.tools)
        try:
            result = await client.call_tool(tool, args)
            out["is_error"] = bool(result.is_error)
            out["structured"] = result.structured_content
            out["text"] = [c.text for c in result.content if getattr(c, "type", "") == "text"]
        except MCPError as e:
            out["error"] = {"code": e.error.code, "message": e.error.message}
    out["asked"] = asked
    return out


if __name__ == "__main__":
    url, mode, token, tool, args = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(url, mode, token, tool, json.loads(args)))))
