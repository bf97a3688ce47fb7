"""OAuth refresh of `mcp_oauth` credentials, end to end: the official SDK drives a real `loophost serve`, whose
sessions connect to a real MCP server that accepts only unexpired access tokens of a real loopback token
endpoint (`_oauth_server.py`). Expiry at connect and in the middle of a session (401 and 403), two sessions
refreshing at once (one exchange), a refresh that fails (recorded on the credential, a session error, the session
goes on), and the secret sweep over all of it."""

from __future__ import annotations

import secrets as random
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from ._mcp_server import McpTestServer
from ._oauth_server import OAuthIssuer
from ._sweep import LoggedServer, Recorder, assert_no_secret, start_logged_server
from .test_events_api import is_idle, message, read_until, uid
from .test_mcp_sdk import mcp_session, of, reply, turn

CLIENT_SECRET = f"client-secret-{random.token_hex(12)}"
ISSUERS: list[OAuthIssuer] = []


def issuer(method: Any, **options: Any) -> OAuthIssuer:
    made = OAuthIssuer("loophost-tests", None if method == "none" else CLIENT_SECRET, method, **options).start()
    ISSUERS.append(made)
    return made


@pytest.fixture(scope="module")
def loophost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    server = start_logged_server(tmp_path_factory.mktemp("mcp-oauth"))
    yield server
    server.stop()
    for made in ISSUERS:
        made.stop()


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(loophost: LoggedServer, recorder: Recorder) -> Iterator[anthropic.Anthropic]:
    with recorder.client(loophost.url) as c:
        yield c


def mcp_server(name: str, oauth: OAuthIssuer, *, reject_status: int = 401) -> McpTestServer:
    server = McpTestServer(name, oauth, reject_status=reject_status).start()
    return server


def oauth_vault(client: anthropic.Anthropic, oauth: OAuthIssuer, mcp_url: str) -> tuple[str, str]:
    """A vault with an `mcp_oauth` credential holding a fresh token pair of `oauth`: (vault id, credential id)."""
    vault = client.beta.vaults.create(display_name=uid("vault"))
    access, refresh = oauth.issue()
    credential = client.beta.vaults.credentials.create(
        vault.id,
        auth=oauth.credential(mcp_url, access, refresh),  # type: ignore[arg-type]
    )
    return vault.id, credential.id


def refresh_failed(client: anthropic.Anthropic, vault_id: str, credential_id: str) -> Any:
    credential = client.beta.vaults.credentials.retrieve(credential_id, vault_id=vault_id)
    return credential.auth.model_dump().get("refresh_failed")


def test_expired_token_is_refreshed_at_connect(client: anthropic.Anthropic) -> None:
    oauth = issuer("client_secret_basic")
    server = mcp_server("tokens", oauth)
    try:
        vault_id, credential_id = oauth_vault(client, oauth, server.url)
        before = client.beta.vaults.credentials.retrieve(credential_id, vault_id=vault_id)
        oauth.expire_all()
        session = mcp_session(client, [("tokens", server.url)], vault_id, policy="always_allow")
        events = turn(client, session, 'call add {"a": 2, "b": 40}')
        assert not of(events, "session.error")
        assert reply(events) == "add: 42"
        assert oauth.refresh_requests == 1 and oauth.bad_client == 0
        after = client.beta.vaults.credentials.retrieve(credential_id, vault_id=vault_id)
        assert after.auth.type == "mcp_oauth" and before.auth.type == "mcp_oauth"
        assert after.auth.expires_at is not None and before.auth.expires_at is None  # the grant's expires_in
        assert after.updated_at > before.updated_at
        assert refresh_failed(client, vault_id, credential_id) is None
        assert server.calls == [("add", {"a": 2, "b": 40})]
    finally:
        server.stop()


@pytest.mark.parametrize("status", [401, 403])
def test_token_expiring_in_the_middle_of_a_session_is_refreshed_and_the_call_retried(
    client: anthropic.Anthropic, status: int
) -> None:
    oauth = issuer("client_secret_post")
    server = mcp_server(f"mid{status}", oauth, reject_status=status)
    try:
        vault_id, _ = oauth_vault(client, oauth, server.url)
        session = mcp_session(client, [(f"mid{status}", server.url)], vault_id, policy="always_allow")
        assert reply(turn(client, session, 'call echo {"text": "one"}')) == f"echo: mid{status} says one"
        assert oauth.refresh_requests == 0
        oauth.expire_all()  # the connection stays open; its next request is refused
        rejected = server.rejected
        events = turn(client, session, 'call echo {"text": "two"}')
        assert not of(events, "session.error")
        (result,) = of(events, "agent.mcp_tool_result")
        assert result.is_error is False and result.content[0].text == f"mid{status} says two"
        assert oauth.refresh_requests == 1 and oauth.bad_client == 0
        assert server.rejected > rejected  # the call was refused once, then retried with the new token
        assert server.calls == [("echo", {"text": "one"}), ("echo", {"text": "two"})]  # and ran once
    finally:
        server.stop()


def test_two_sessions_refreshing_at_once_make_one_exchange(client: anthropic.Anthropic) -> None:
    oauth = issuer("none", delay=0.3)
    server = mcp_server("shared", oauth)
    try:
        vault_id, _ = oauth_vault(client, oauth, server.url)
        sessions = [mcp_session(client, [("shared", server.url)], vault_id, policy="always_allow") for _ in range(2)]
        oauth.expire_all()
        streams = [client.beta.sessions.events.stream(s, timeout=60) for s in sessions]
        try:
            for n, session in enumerate(sessions):
                client.beta.sessions.events.send(session, events=[message(f'call add {{"a": {n}, "b": 1}}')])
            results = [read_until(stream, is_idle("end_turn"), timeout=60) for stream in streams]
        finally:
            for stream in streams:
                stream.close()
        assert [reply(events) for events in results] == ["add: 1", "add: 2"]
        assert not [e for events in results for e in of(events, "session.error")]
        assert oauth.refresh_requests == 1  # the refresh token rotates: a second exchange would have failed
    finally:
        server.stop()


def test_failed_refresh_is_recorded_and_the_session_goes_on(client: anthropic.Anthropic) -> None:
    oauth = issuer("client_secret_basic")
    server = mcp_server("revoked", oauth)
    try:
        vault_id, credential_id = oauth_vault(client, oauth, server.url)
        session = mcp_session(client, [("revoked", server.url)], vault_id, policy="always_allow")
        assert reply(turn(client, session, 'call add {"a": 1, "b": 1}')) == "add: 2"
        oauth.expire_all()
        oauth.revoke_refresh_tokens()
        # in the middle of the session: the call fails, the session error comes with its result
        events = turn(client, session, 'call add {"a": 2, "b": 2}')
        (error,) = of(events, "session.error")
        assert error.error.type == "mcp_authentication_failed_error"
        assert error.error.mcp_server_name == "revoked"
        assert "could not be refreshed" in error.error.message
        (result,) = of(events, "agent.mcp_tool_result")
        assert result.is_error is True and "could not be refreshed" in result.content[0].text
        failed = refresh_failed(client, vault_id, credential_id)
        assert failed is not None and failed["status"] == "failed"
        assert failed["http_response"]["status_code"] == 400
        assert "invalid_grant" in failed["http_response"]["body"] and "[redacted]" in failed["http_response"]["body"]
        # the next turn connects again and says so, without asking the issuer again for a refused refresh token;
        # the session stays usable
        events = turn(client, session, 'call add {"a": 3, "b": 3}')
        (error,) = of(events, "session.error")
        assert error.error.type == "mcp_authentication_failed_error"
        assert "could not be refreshed" in error.error.message
        assert reply(turn(client, session, "still here")) == "echo: still here"
        assert oauth.refresh_requests == 1
        # a new token pair written by the user clears the recorded failure and works
        access, refresh = oauth.issue()
        client.beta.vaults.credentials.update(
            credential_id,
            vault_id=vault_id,
            auth={"type": "mcp_oauth", "access_token": access, "refresh": {"refresh_token": refresh}},
        )
        assert refresh_failed(client, vault_id, credential_id) is None
        assert reply(turn(client, session, 'call add {"a": 4, "b": 4}')) == "add: 8"
        assert [c[1] for c in server.calls] == [{"a": 1, "b": 1}, {"a": 4, "b": 4}]
    finally:
        server.stop()


def test_validate_refreshes_an_expired_credential(client: anthropic.Anthropic) -> None:
    oauth = issuer("client_secret_post")
    server = mcp_server("validated", oauth)
    try:
        vault_id, credential_id = oauth_vault(client, oauth, server.url)
        oauth.expire_all()
        result = client.beta.vaults.credentials.mcp_oauth_validate(credential_id, vault_id=vault_id)
        assert result.status == "valid" and result.refresh is not None and result.refresh.status == "succeeded"
        oauth.expire_all()
        oauth.revoke_refresh_tokens()
        result = client.beta.vaults.credentials.mcp_oauth_validate(credential_id, vault_id=vault_id)
        assert result.status == "invalid" and result.refresh is not None and result.refresh.status == "failed"
        assert result.refresh.http_response is not None and result.refresh.http_response.status_code == 400
        assert refresh_failed(client, vault_id, credential_id)["status"] == "failed"
        assert oauth.refresh_requests == 2
    finally:
        server.stop()


def test_zz_secret_sweep(loophost: LoggedServer, recorder: Recorder) -> None:
    issued = [token for made in ISSUERS for token in made.issued]
    assert len(issued) >= 10
    assert_no_secret([CLIENT_SECRET, *issued], server=loophost, recorder=recorder)
