"""Events pacsnode raises for users to hook into (Python callables, webhooks)."""
