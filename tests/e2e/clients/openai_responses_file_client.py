"""Send one file as a Responses API ``input_file`` (base64 ``file_data`` data URL) with the official openai
SDK through the proxy; print the outcome as JSON."""

from __future__ import annotations

import base64
from pathlib import Path

import openai
from _common import SentBodies, emit, error_result, http_client, proxy_parser


def main() -> None:
    parser = proxy_parser(__doc__)
    parser.add_argument("--file", required=True, help="the file to send; its name is sent as is")
    parser.add_argument("--media-type", required=True, help="the data URL's media type, e.g. text/csv")
    parser.add_argument("--prompt", required=True)
    args = parser.parse_args()
    sent = SentBodies()
    client = openai.OpenAI(api_key="sk-e2e-test", base_url=f"{args.base_url}/v1", max_retries=0,
                           http_client=http_client(openai, args.proxy, args.ca, sent))
    path = Path(args.file)
    file_data = f"data:{args.media_type};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    try:
        reply = client.responses.create(model="gpt-4.1-mini", input=[{"role": "user", "content": [
            {"type": "input_file", "filename": path.name, "file_data": file_data},
            {"type": "input_text", "text": args.prompt},
        ]}])
        emit({"text": reply.output_text, "sent": sent.last_b64()})
    except openai.APIError as e:
        emit(error_result(e, sent))


if __name__ == "__main__":
    main()
