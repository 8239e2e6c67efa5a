"""The MCP server at ``/mcp``: the native tasks, their prices, the balance, the models and job
status as Model Context Protocol tools, over streamable HTTP, in the gateway's own process."""
