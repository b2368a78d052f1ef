"""Send one chat completion with the official openai SDK through the proxy; print the outcome as JSON."""

from __future__ import annotations

import openai
from _common import SentBodies, arguments, emit, error_result, http_client


def main() -> None:
    args = arguments(__doc__ or "")
    sent = SentBodies()
    client = openai.OpenAI(api_key="sk-e2e-test", base_url=f"{args.base_url}/v1", max_retries=0,
                           http_client=http_client(openai, args.proxy, args.ca, sent))
    messages = [{"role": "user", "content": args.prompt}]
    try:
        if args.stream:
            deltas = []
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    deltas.append(chunk.choices[0].delta.content)
            emit({"text": "".join(deltas), "deltas": deltas, "sent": sent.last_b64()})
        else:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            emit({"text": reply.choices[0].message.content, "sent": sent.last_b64()})
    except openai.APIError as e:
        emit(error_result(e, sent))


if __name__ == "__main__":
    main()
