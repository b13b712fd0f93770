"""Inbound adapters: Telegram handlers, the web admin, and the runtime that wires them."""
