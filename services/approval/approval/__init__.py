"""The control plane: workspaces, API keys, connected accounts, assets and their approval,
and the post board built from post events."""
