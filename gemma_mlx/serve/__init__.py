"""The OpenAI-compatible server: ASGI app, generation worker, prefix cache, chat page."""
