"""Events after commit, across processes, and the WebSocket hub."""
