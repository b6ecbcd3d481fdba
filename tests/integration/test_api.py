"""The add-on client against the loopback server: contract violations become clear errors."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from custom_components.homeiq.api import (
    HomeIQClient,
    HomeIQModelsLoadingError,
    HomeIQRequestError,
    HomeIQResponseError,
    RequestLimits,
)
from tests.integration.addon_server import TOKEN, FakeAddon


def _client(hass: HomeAssistant, addon: FakeAddon) -> HomeIQClient:
    return HomeIQClient(async_get_clientsession(hass), addon.host, addon.port, TOKEN)


async def test_suggest_and_rerank_follow_the_contract(hass: HomeAssistant, addon: FakeAddon) -> None:
    client = _client(hass, addon)

    result = await client.async_suggest(
        [{"id": "a", "text": "lock the front door at night"}, {"id": "b", "text": "turn on the porch light"}],
        query="front door",
        known=["turn on the porch light"],
        top_k=5,
    )
    ranked = await client.async_rerank("porch light", ["front door", "porch light at dusk"], top_k=1)

    assert [(s.id, s.category, s.priority, s.duplicate_of) for s in result.suggestions] == [
        ("a", "security", "high", None),
        ("b", None, None, "known:0"),
    ]
    assert result.profile == "test"
    assert ranked == [(1, pytest.approx(2 / 4))]
    assert addon.calls("/v1/rerank")[0] == {
        "query": "porch light",
        "documents": ["front door", "porch light at dusk"],
    }  # top_k is applied here: long lists are reranked in chunks


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/suggest", "{}"),
        ("/v1/suggest", '{"suggestions": [{"id": "a"}]}'),
        ("/v1/suggest", '{"suggestions": [{"id": "a", "score": "high"}]}'),
        ("/v1/suggest", '{"suggestions": [], "duplicates": [{"id": "a"}]}'),
        ("/v1/suggest", '{"suggestions": [], "duplicates": {}}'),
        ("/v1/rerank", "{}"),
        ("/v1/rerank", '{"results": [{"index": "x", "score": 1}]}'),
        ("/v1/rerank", '{"results": [{"index": 5, "score": 1}]}'),
        ("/v1/rerank", "not json"),
    ],
)
async def test_answers_that_break_the_contract_raise_response_errors(
    hass: HomeAssistant, addon: FakeAddon, path: str, body: str
) -> None:
    client = _client(hass, addon)
    addon.overrides[path] = (200, body, {})

    with pytest.raises(HomeIQResponseError):
        if path == "/v1/suggest":
            await client.async_suggest([{"id": "a", "text": "t"}])
        else:
            await client.async_rerank("q", ["d"])


async def test_suggest_without_optional_fields_still_parses(hass: HomeAssistant, addon: FakeAddon) -> None:
    addon.overrides["/v1/suggest"] = (200, '{"suggestions": [{"id": "a", "score": 0.5}]}', {})

    result = await _client(hass, addon).async_suggest([{"id": "a", "text": "t"}])

    assert result.profile is None
    assert result.models == {}
    assert result.suggestions[0].category is None


async def test_error_bodies_and_retry_after_are_read(hass: HomeAssistant, addon: FakeAddon) -> None:
    client = _client(hass, addon)
    addon.overrides["/v1/suggest"] = (422, '{"error": {"code": "invalid_fields", "message": "no"}}', {})
    with pytest.raises(HomeIQRequestError) as request_error:
        await client.async_suggest([{"id": "a", "text": "t"}])
    assert (request_error.value.status, request_error.value.code) == (422, "invalid_fields")

    addon.overrides["/v1/suggest"] = (400, '{"detail": "odd"}', {})
    with pytest.raises(HomeIQRequestError) as request_error:
        await client.async_suggest([{"id": "a", "text": "t"}])
    assert request_error.value.code == "error"

    for header, expected in (({"Retry-After": "soon"}, None), ({}, None), ({"Retry-After": "12"}, 12.0)):
        addon.overrides["/v1/suggest"] = (503, "{}", header)
        with pytest.raises(HomeIQModelsLoadingError) as loading:
            await client.async_suggest([{"id": "a", "text": "t"}])
        assert loading.value.retry_after == expected


async def test_ipv6_hosts_are_bracketed_in_the_url(hass: HomeAssistant) -> None:
    client = HomeIQClient(async_get_clientsession(hass), "fd00::1", 8765, TOKEN)

    assert client.base_url == "http://[fd00::1]:8765"


async def test_requests_are_trimmed_to_the_limits_the_add_on_reports(
    hass: HomeAssistant, addon: FakeAddon
) -> None:
    addon.limits = {"max_texts": 2, "max_chars": 12, "max_documents": 2}
    client = _client(hass, addon)
    await client.async_status()

    result = await client.async_suggest(
        [{"id": str(i), "text": f"pattern number {i}"} for i in range(3)],
        query="a query longer than twelve",
        known=["known one is long", "", "known two", "known three"],
        top_k=50,
    )
    ranked = await client.async_rerank("porch light", ["a", "porch", "light", "porch light", "b"], top_k=2)

    request = addon.calls("/v1/suggest")[0]
    assert request is not None
    assert [p["text"] for p in request["patterns"]] == ["pattern numb", "pattern numb"]
    assert request["known"] == ["known one is", "known two"]
    assert request["query"] == "a query long"
    assert request["top_k"] == 2
    assert request["dedupe"] == "known"  # the engine tells its patterns apart; words would merge them
    assert [s.id for s in result.suggestions if s.duplicate_of is None] == ["0", "1"]
    assert len(addon.calls("/v1/rerank")) == 3  # five documents, two per request
    assert ranked == [(3, 1.0), (1, 0.5)]


async def test_limits_fall_back_to_defaults_when_not_reported(hass: HomeAssistant, addon: FakeAddon) -> None:
    addon.overrides["/v1/models"] = (
        200,
        '{"version": "1", "models": {}, "limits": {"max_texts": "many", "max_chars": 0}}',
        {},
    )
    client = _client(hass, addon)

    await client.async_status()

    assert client.limits == RequestLimits()
    assert RequestLimits.from_models({}) == RequestLimits()


async def test_model_states_are_read_from_v1_models(hass: HomeAssistant, addon: FakeAddon) -> None:
    addon.model_state, addon.model_progress = "downloading", 0.45
    client = _client(hass, addon)

    status = await client.async_status()

    assert status.version == "0.1.0-test"
    assert status.busy_roles == ["classifier", "embedding", "reranker"]
    assert status.models["embedding"].progress == pytest.approx(0.45)
    addon.model_state, addon.model_progress, addon.model_error = "error", None, "no OpenVINO files"
    status = await client.async_status()
    assert status.failed_roles == ["classifier", "embedding", "reranker"]
    assert status.models["reranker"].error == "no OpenVINO files"


@pytest.mark.parametrize(
    "body",
    [
        '{"models": {}}',
        '{"version": "1", "models": []}',
        '{"version": "1", "models": {"embedding": {"state": "ready"}}}',
        '{"version": "1", "models": {"embedding": "ready"}}',
    ],
)
async def test_a_malformed_models_answer_is_a_response_error(
    hass: HomeAssistant, addon: FakeAddon, body: str
) -> None:
    addon.overrides["/v1/models"] = (200, body, {})

    with pytest.raises(HomeIQResponseError):
        await _client(hass, addon).async_status()
