"""Service functions: the use cases the edges (Telegram, web, sandbox) call."""
