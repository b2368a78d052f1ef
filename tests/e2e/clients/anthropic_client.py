"""Send one message with the official anthropic SDK through the proxy; print the outcome as JSON."""

from __future__ import annotations

import anthropic
from _common import SentBodies, arguments, emit, error_result, http_client


def main() -> None:
    args = arguments(__doc__ or "")
    sent = SentBodies()
    client = anthropic.Anthropic(api_key="sk-ant-e2e-test", base_url=args.base_url, max_retries=0,
                                 http_client=http_client(anthropic, args.proxy, args.ca, sent))
    request = {"model": "claude-sonnet-4-5", "max_tokens": 256,
               "messages": [{"role": "user", "content": args.prompt}]}
    try:
        if args.stream:
            with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
                deltas = list(stream.text_stream)
                final = stream.get_final_message()
            emit({"text": "".join(deltas), "deltas": deltas, "final": final.content[0].text,
                  "sent": sent.last_b64()})
        else:
            reply = client.messages.create(**request)  # type: ignore[arg-type]
            emit({"text": reply.content[0].text, "sent": sent.last_b64()})
    except anthropic.APIError as e:
        emit(error_result(e, sent))


if __name__ == "__main__":
    main()
