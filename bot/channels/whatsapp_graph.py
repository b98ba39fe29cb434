"""The few WhatsApp Cloud API (Graph API) calls the channel makes, over aiohttp.

``POST /{phone-number-id}/messages`` sends, ``POST /{phone-number-id}/media`` uploads a file,
``GET /{media-id}`` tells a received file's size and temporary URL, and that URL is then
fetched with the same bearer token. The base URL comes from ``WHATSAPP_GRAPH_URL`` so tests
point it at a fake on loopback. The token travels only in the ``Authorization`` header and
is never logged; nor are media URLs (they are signed).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

SEND_TIMEOUT = aiohttp.ClientTimeout(total=30)
MEDIA_TIMEOUT = aiohttp.ClientTimeout(total=120)


class GraphError(Exception):
    """The Graph API answered with an error object (``{"error": {"code": ...}}``)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MediaTooBig(Exception):
    """A download grew past the limit its metadata promised to respect."""


class GraphClient:
    def __init__(self, base_url: str, token: str, phone_number_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.phone_number_id = phone_number_id
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, to: str, message: dict[str, Any]) -> str:
        """Send one message; returns its wamid."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        body.update(message)
        url = f"{self.base_url}/{self.phone_number_id}/messages"
        async with self.session.post(url, json=body, timeout=SEND_TIMEOUT) as response:
            answer = await _json(response)
        return str(answer["messages"][0]["id"])

    async def upload(self, content: bytes, filename: str, mime: str) -> str:
        """Upload a file for sending; returns the media id."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", content, filename=filename, content_type=mime)
        url = f"{self.base_url}/{self.phone_number_id}/media"
        async with self.session.post(url, data=form, timeout=MEDIA_TIMEOUT) as response:
            answer = await _json(response)
        return str(answer["id"])

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """A received file's metadata: ``url``, ``mime_type``, ``file_size``, ``sha256``."""
        url = f"{self.base_url}/{media_id}"
        async with self.session.get(url, timeout=SEND_TIMEOUT) as response:
            return await _json(response)

    async def download(self, url: str, max_bytes: int) -> bytes:
        """The bytes at a media URL, refusing to read past ``max_bytes``."""
        async with self.session.get(url, timeout=MEDIA_TIMEOUT) as response:
            if response.status != 200:
                await _json(response)  # raises GraphError with what Meta said
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise MediaTooBig(f"media over {max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    text = await response.text()
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {}
    if response.status >= 400 or "error" in answer:
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        details = (error.get("error_data") or {}).get("details") or ""
        message = " ".join(str(part) for part in (error.get("message", text[:200]), details))
        raise GraphError(response.status, code if isinstance(code, int) else None, message)
    if not isinstance(answer, dict):
        raise GraphError(response.status, None, "unexpected answer")
    return answer
