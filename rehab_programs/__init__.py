"""Exercise library, program schema, repetition and quality engine."""
