"""dalab's assistant: the agent, chat models, lecture retrieval, the UI, MCP and the CLI."""
