"""JOBQUEUE_REDIS_PASSWORD on a real Redis that requires a password: the URL carries none (a Helm value),
the password comes apart (a Kubernetes Secret); sync and asyncio clients both authenticate with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from jobqueue import AsyncClient, Client, Settings
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import BrokerUnavailable, ConfigurationError

pytestmark = pytest.mark.timeout(60)
PASSWORD = "s3cret:@/pw"  # characters a URL would need percent-encoded: given apart, none is needed


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("guarded")), password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


def _settings(server: RedisServer, password: str | None) -> Settings:
    return Settings(
        redis_url=SecretStr(f"redis://127.0.0.1:{server.port}/0"),
        redis_password=SecretStr(password) if password is not None else None,
        key_prefix="pw",
    )


def test_the_password_apart_authenticates_sync_and_asyncio_clients(guarded_server: RedisServer) -> None:
    settings = _settings(guarded_server, PASSWORD)
    client = Client(settings)
    try:
        handle = client.enqueue("t", [1], queue="pwq")
        assert client.get_task(handle.id).status.value == "QUEUED"
    finally:
        client.close()

    async def via_asyncio() -> int:
        aclient = AsyncClient(settings)
        try:
            await aclient.enqueue("t", [2], queue="pwq")
            return (await aclient.queue_depth("pwq")).total_ready
        finally:
            await aclient.close()

    assert asyncio.run(via_asyncio()) == 2


def test_without_it_or_with_a_wrong_one_the_server_refuses_and_the_error_says_so(
    guarded_server: RedisServer,
) -> None:
    # Without a password, the server's own NOAUTH, not a connection it closed: Redis drops an
    # unauthenticated client that sends a command of more than 10 arguments (the connect-time script
    # check sends one per 8 scripts).
    said = {None: "Authentication required", "wrong": "invalid username-password pair"}
    for password, reason in said.items():

        async def via_asyncio(settings: Settings) -> None:
            aclient = AsyncClient(settings)
            try:
                await aclient.enqueue("t", [1], queue="pwq")
            finally:
                await aclient.close()

        client = Client(_settings(guarded_server, password))
        try:
            for attempt in (
                lambda: client.enqueue("t", [1], queue="pwq"),
                lambda: client.get_task("pwq.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"),
            ):
                with pytest.raises(BrokerUnavailable) as caught:
                    attempt()
                assert reason in str(caught.value) and "JOBQUEUE_REDIS_PASSWORD" in str(caught.value)
                assert "wrong" not in str(caught.value).replace("invalid username-password", "")
            with pytest.raises(BrokerUnavailable, match=reason):
                asyncio.run(via_asyncio(_settings(guarded_server, password)))
        finally:
            client.close()


def test_a_password_in_the_url_too_is_refused_before_connecting(guarded_server: RedisServer) -> None:
    settings = Settings(
        redis_url=SecretStr(guarded_server.url), redis_password=SecretStr(PASSWORD), key_prefix="pw"
    )
    with pytest.raises(ConfigurationError, match="in one place"):
        Client(settings).enqueue("t", [1], queue="pwq")
