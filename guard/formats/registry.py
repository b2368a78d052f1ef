"""The request formats by api name, as policies name them in the service catalogue."""

from __future__ import annotations

from guard.formats.anthropic import AnthropicFormat
from guard.formats.base import RequestFormat, UnknownFormat
from guard.formats.chatgpt_web import ChatGPTWebFormat
from guard.formats.claude_web import ClaudeWebFormat
from guard.formats.copilot import CopilotFormat
from guard.formats.deepseek import DeepSeekWebFormat
from guard.formats.gemini import GeminiFormat
from guard.formats.gemini_web import GeminiWebFormat
from guard.formats.generic import GenericFormat
from guard.formats.grok import GrokWebFormat
from guard.formats.le_chat import LeChatFormat
from guard.formats.meta_ai import MetaAIFormat
from guard.formats.openai import OpenAIFormat
from guard.formats.perplexity import PerplexityFormat
from guard.formats.poe import PoeFormat
from guard.formats.uploads import UploadsFormat

_openai = OpenAIFormat()

FORMATS: dict[str, RequestFormat] = {
    "openai": _openai,
    "azure_openai": _openai,
    "openai_compatible": _openai,
    "anthropic": AnthropicFormat(),
    "gemini": GeminiFormat(),
    "chatgpt_web": ChatGPTWebFormat(),
    "claude_web": ClaudeWebFormat(),
    "gemini_web": GeminiWebFormat(),
    "copilot": CopilotFormat(),
    "perplexity": PerplexityFormat(),
    "deepseek": DeepSeekWebFormat(),
    "grok_web": GrokWebFormat(),
    "meta_ai": MetaAIFormat(),
    "le_chat": LeChatFormat(),
    "poe_web": PoeFormat(),
    "generic": GenericFormat(),
    # Known AI hosts the guard does not support: every request is answered with a block page.
    "unsupported": GenericFormat(),
    "uploads": UploadsFormat(),
}


def format_for(api: str) -> RequestFormat:
    """The format registered under ``api``; :class:`UnknownFormat` names the known ones otherwise."""
    try:
        return FORMATS[api]
    except KeyError:
        raise UnknownFormat(f"unknown api {api!r}; expected one of {sorted(FORMATS)}") from None
