"""dalab's typed tools: each capability as one function returning a ToolResult, one registry."""
