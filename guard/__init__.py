"""guard: an outbound proxy that keeps personal data and classified material out of generative-AI services."""

__version__ = "0.1.0"
