"""FastAPI app, WebRTC, sessions, storage and web pages."""
