"""HTTP and OpenAPI calls of blueprints, against a real server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from legato.blueprint.auth import clear_token_cache
from legato.blueprint.http import perform_http
from legato.blueprint.openapi import clear_description_cache, perform_openapi
from legato.errors import BlueprintFault
from tests.servers import LocalServer

ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    clear_token_cache()
    clear_description_cache()
    with LocalServer() as running:
        yield running


def http(
    args: dict[str, Any],
    task_input: Any = None,
    authentications: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
) -> Any:
    return asyncio.run(
        perform_http(
            args,
            task_input=task_input or {},
            authentications=authentications or {},
            secrets=secrets or {},
            client=client,
        )
    )


def openapi(args: dict[str, Any], authentications: dict[str, Any] | None = None) -> Any:
    return asyncio.run(
        perform_openapi(args, task_input={}, authentications=authentications or {}, secrets={})
    )


def fault(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(BlueprintFault) as caught:
        call(*args, **kwargs)
    return caught.value.problem


# -- requests and output shapes -------------------------------------------------------------


def test_content_output_is_the_decoded_json_body(server: LocalServer) -> None:
    pet = http({"method": "get", "endpoint": server.url + "/v2/pet/{petId}"}, {"petId": 1})
    assert pet["id"] == 1 and pet["name"] == "milou" and pet["status"] == "available"


def test_uri_template_fills_the_query_from_the_task_input(server: LocalServer) -> None:
    uri = server.url + "/v2/pet/findByStatus?status={status}"
    pets = http({"method": "get", "endpoint": {"uri": uri}}, {"status": "pending"})
    assert [pet["name"] for pet in pets] == ["garfield"]


def test_uri_template_values_are_url_quoted(server: LocalServer) -> None:
    echo = http({"method": "get", "endpoint": server.url + "/anything/{name}"}, {"name": "a b/c"})
    assert echo["path"] == "/anything/a%20b%2Fc"


def test_uri_template_without_a_value_names_the_placeholder(server: LocalServer) -> None:
    problem = fault(http, {"method": "get", "endpoint": server.url + "/v2/pet/{petId}"}, {})
    assert problem["type"] == ERRORS + "configuration"
    assert problem["status"] == 400
    assert "'petId'" in problem["detail"]


def test_response_output_describes_request_and_response(server: LocalServer) -> None:
    answer = http(
        {"method": "get", "endpoint": server.url + "/v2/pet/2", "output": "response"},
    )
    assert answer["statusCode"] == 200
    assert answer["request"]["method"] == "GET"
    assert answer["request"]["uri"] == server.url + "/v2/pet/2"
    assert isinstance(answer["request"]["headers"], dict)
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["content"]["name"] == "garfield"


def test_response_output_redacts_credentials(server: LocalServer) -> None:
    answer = http(
        {
            "method": "get",
            "endpoint": {
                "uri": server.url + "/bearer",
                "authentication": {"bearer": {"token": "t0ps3cret"}},
            },
            "output": "response",
        }
    )
    assert answer["request"]["headers"]["Authorization"] == "<redacted>"
    assert "t0ps3cret" not in str(answer["request"])


def test_raw_output_is_base64_of_the_body(server: LocalServer) -> None:
    assert http({"method": "get", "endpoint": server.url + "/bytes", "output": "raw"}) == "AAEC/w=="
    raw_text = http({"method": "get", "endpoint": server.url + "/text", "output": "raw"})
    assert raw_text == "aGVsbG8sIGxlZ2F0bw=="


def test_content_of_text_binary_and_empty_bodies(server: LocalServer) -> None:
    assert http({"method": "get", "endpoint": server.url + "/text"}) == "hello, legato"
    assert http({"method": "get", "endpoint": server.url + "/bytes"}) == "AAEC/w=="
    assert http({"method": "get", "endpoint": server.url + "/empty"}) is None
    assert http({"method": "get", "endpoint": server.url + "/empty", "output": "raw"}) is None


def test_query_and_headers_are_sent(server: LocalServer) -> None:
    echo = http(
        {
            "method": "get",
            "endpoint": server.url + "/anything?fixed=1",
            "query": {"search": "luke", "side": ["light", "dark"], "jedi": True, "none": None},
            "headers": {"X-Trace": "t-1", "X-Count": 3},
        }
    )
    assert echo["query"] == {
        "fixed": ["1"],
        "search": ["luke"],
        "side": ["light", "dark"],
        "jedi": ["true"],
    }
    assert echo["headers"]["X-Trace"] == "t-1"
    assert echo["headers"]["X-Count"] == "3"


def test_json_body_is_posted(server: LocalServer) -> None:
    echo = http(
        {"method": "post", "endpoint": server.url + "/anything", "body": {"name": "rex", "age": 3}}
    )
    assert echo["method"] == "POST"
    assert echo["json"] == {"name": "rex", "age": 3}
    assert echo["headers"]["Content-Type"] == "application/json"
    created = http({"method": "post", "endpoint": server.url + "/v2/pet", "body": {"name": "rex"}})
    assert created == {"id": 3, "name": "rex"}


def test_text_and_form_bodies(server: LocalServer) -> None:
    echo = http({"method": "put", "endpoint": server.url + "/anything", "body": "plain words"})
    assert echo["body"] == "plain words"
    assert echo["headers"]["Content-Type"].startswith("text/plain")
    form = http(
        {
            "method": "post",
            "endpoint": server.url + "/anything",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": {"a": "1 2", "b": True},
        }
    )
    assert form["body"] == "a=1+2&b=true"


# -- errors ---------------------------------------------------------------------------------


def test_not_found_raises_a_communication_error(server: LocalServer) -> None:
    problem = fault(http, {"method": "get", "endpoint": server.url + "/v2/pet/getPetByName/rex"})
    assert problem["type"] == ERRORS + "communication"
    assert problem["status"] == 404
    assert problem["title"] == "HTTP 404 Not Found"
    assert problem["detail"].startswith(f"GET {server.url}/v2/pet/getPetByName/rex answered 404")
    assert "no pet named rex" in problem["detail"]


def test_server_error_status_is_kept(server: LocalServer) -> None:
    problem = fault(http, {"method": "delete", "endpoint": server.url + "/status/503"})
    assert (problem["status"], problem["title"]) == (503, "HTTP 503 Service Unavailable")
    assert problem["detail"] == f"DELETE {server.url}/status/503 answered 503: status 503"


def test_redirects_are_errors_unless_allowed(server: LocalServer) -> None:
    problem = fault(http, {"method": "get", "endpoint": server.url + "/redirect"})
    assert (problem["type"], problem["status"]) == (ERRORS + "communication", 302)
    followed = http({"method": "get", "endpoint": server.url + "/redirect", "redirect": True})
    assert followed == {"redirected": True}
    assert server.hits["/target"] == 1


def test_redirect_true_still_rejects_client_errors(server: LocalServer) -> None:
    problem = fault(
        http, {"method": "get", "endpoint": server.url + "/status/400", "redirect": True}
    )
    assert problem["status"] == 400


def test_connection_refused_is_a_503_communication_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    problem = fault(http, {"method": "get", "endpoint": f"http://127.0.0.1:{port}/x"})
    assert (problem["type"], problem["status"]) == (ERRORS + "communication", 503)
    assert f"GET http://127.0.0.1:{port}/x failed" in problem["detail"]


def test_timeout_is_a_408_timeout_error(server: LocalServer) -> None:
    async def call() -> Any:
        async with httpx.AsyncClient(timeout=0.2) as client:
            return await perform_http(
                {"method": "get", "endpoint": server.url + "/delay/1"},
                task_input={},
                authentications={},
                secrets={},
                client=client,
            )

    with pytest.raises(BlueprintFault) as caught:
        asyncio.run(call())
    assert (caught.value.problem["type"], caught.value.problem["status"]) == (
        ERRORS + "timeout",
        408,
    )


def test_bad_arguments_are_configuration_errors(server: LocalServer) -> None:
    assert fault(http, {"endpoint": server.url})["type"] == ERRORS + "configuration"
    assert (
        "output must be one of"
        in fault(http, {"method": "get", "endpoint": server.url, "output": "json"})["detail"]
    )
    assert "not a valid URI" in fault(http, {"method": "get", "endpoint": "http://[::1"})["detail"]
    assert fault(http, {"method": "get", "endpoint": "htp://x"})["type"] == ERRORS + "configuration"


# -- authentication -------------------------------------------------------------------------


def basic_call(server: LocalServer, authentication: Any, password: str = "conformance-test") -> Any:
    uri = server.url + "/basic-auth/serverless-workflow/" + password
    return {"method": "get", "endpoint": {"uri": uri, "authentication": authentication}}


def test_basic_authentication_inline(server: LocalServer) -> None:
    policy = {"basic": {"username": "serverless-workflow", "password": "conformance-test"}}
    answer = http(basic_call(server, policy))
    assert answer == {"authenticated": True, "user": "serverless-workflow"}


def test_basic_authentication_refused_hides_the_password(server: LocalServer) -> None:
    policy = {"basic": {"username": "serverless-workflow", "password": "wrong-password"}}
    problem = fault(http, basic_call(server, policy, password="right-password"))
    assert problem["status"] == 401
    assert "wrong-password" not in str(problem)
    no_credentials = fault(http, basic_call(server, None))
    assert no_credentials["status"] == 401


def test_password_in_the_uri_is_scrubbed_from_errors(server: LocalServer) -> None:
    secret = {"login": {"username": "serverless-workflow", "password": "hunter22"}}
    problem = fault(
        http,
        basic_call(server, {"basic": {"username": "x", "password": "y"}}, password="hunter22"),
        secrets=secret,
    )
    assert "hunter22" not in problem["detail"]
    assert "/basic-auth/***/*** answered 401" in problem["detail"]  # all secret values go


def test_basic_authentication_by_name_and_from_a_secret(server: LocalServer) -> None:
    secrets = {"login": {"username": "serverless-workflow", "password": "conformance-test"}}
    authentications = {"fromSecret": {"basic": {"use": "login"}}}
    answer = http(basic_call(server, {"use": "fromSecret"}), None, authentications, secrets)
    assert answer["authenticated"] is True


def test_unknown_policy_name_suggests_the_close_one(server: LocalServer) -> None:
    authentications = {"petStoreAuth": {"bearer": {"token": "x"}}}
    problem = fault(http, basic_call(server, {"use": "petstoreAuth"}), None, authentications)
    assert problem["type"] == ERRORS + "configuration"
    assert (
        "'petstoreAuth'" in problem["detail"] and "did you mean 'petStoreAuth'" in problem["detail"]
    )


def test_missing_secret_is_a_configuration_error(server: LocalServer) -> None:
    problem = fault(http, basic_call(server, {"basic": {"use": "nope"}}), secrets={"other": {}})
    assert problem["type"] == ERRORS + "configuration"
    assert "'nope'" in problem["detail"] and "other" in problem["detail"]


def test_bearer_token_from_a_named_policy_with_an_expression(server: LocalServer) -> None:
    authentications = {"petStoreAuth": {"bearer": {"token": "${ .token }"}}}
    args = {
        "method": "get",
        "endpoint": {"uri": server.url + "/bearer", "authentication": {"use": "petStoreAuth"}},
    }
    answer = http(args, {"token": "abc-123"}, authentications)
    assert answer == {"authenticated": True, "token": "abc-123"}


def test_digest_authentication(server: LocalServer) -> None:
    uri = server.url + "/digest-auth/auth/ann/pa55word"
    ok = {"digest": {"username": "ann", "password": "pa55word"}}
    assert http({"method": "get", "endpoint": {"uri": uri, "authentication": ok}})["user"] == "ann"
    bad = {"digest": {"username": "ann", "password": "nope"}}
    assert (
        fault(http, {"method": "get", "endpoint": {"uri": uri, "authentication": bad}})["status"]
        == 401
    )


def test_certificate_authentication_is_not_supported(server: LocalServer) -> None:
    problem = fault(http, basic_call(server, {"certificate": {}}))
    assert problem["type"] == ERRORS + "configuration"
    assert "not supported by Legato" in problem["detail"]


def oauth2_policy(server: LocalServer, **overrides: Any) -> dict[str, Any]:
    client_id, secret = server.oauth_client
    policy: dict[str, Any] = {
        "authority": server.url,
        "grant": "client_credentials",
        "client": {"id": client_id, "secret": secret},
        "scopes": ["api"],
        "audiences": ["runtime"],
    }
    policy.update(overrides)
    return {"oauth2": policy}


def protected_call(server: LocalServer, authentication: Any) -> dict[str, Any]:
    uri = server.url + "/oauth2/resource"
    return {"method": "get", "endpoint": {"uri": uri, "authentication": authentication}}


def test_oauth2_client_credentials_token_is_cached(server: LocalServer) -> None:
    policy = oauth2_policy(server)
    assert http(protected_call(server, policy)) == {"ok": True}
    assert http(protected_call(server, policy)) == {"ok": True}
    assert server.hits["/oauth2/token"] == 1
    assert server.hits["/oauth2/resource"] == 2


def test_oauth2_refused_cached_token_is_renewed_once(server: LocalServer) -> None:
    policy = oauth2_policy(server)
    http(protected_call(server, policy))
    server.revoke_tokens()
    assert http(protected_call(server, policy)) == {"ok": True}
    assert server.hits["/oauth2/token"] == 2


def test_oauth2_client_secret_basic_and_password_grant(server: LocalServer) -> None:
    client_id, secret = server.oauth_client
    username, password = server.oauth_user
    policy = oauth2_policy(
        server,
        grant="password",
        username=username,
        password=password,
        client={"id": client_id, "secret": secret, "authentication": "client_secret_basic"},
        endpoints={"token": "/oauth2/token"},
    )
    assert http(protected_call(server, policy)) == {"ok": True}


def test_oauth2_json_token_request(server: LocalServer) -> None:
    policy = oauth2_policy(server, request={"encoding": "application/json"})
    assert http(protected_call(server, policy)) == {"ok": True}


def test_oauth2_settings_from_a_secret(server: LocalServer) -> None:
    settings = oauth2_policy(server)["oauth2"]
    answer = http(protected_call(server, {"oauth2": {"use": "idp"}}), secrets={"idp": settings})
    assert answer == {"ok": True}


def test_oauth2_refused_client_is_an_authentication_error(server: LocalServer) -> None:
    policy = oauth2_policy(server, client={"id": "legato-client", "secret": "bad-secret-9"})
    problem = fault(http, protected_call(server, policy))
    assert (problem["type"], problem["status"]) == (ERRORS + "authentication", 401)
    assert "invalid_client" in problem["detail"]
    assert "bad-secret-9" not in str(problem)


def test_oauth2_unsupported_grant(server: LocalServer) -> None:
    problem = fault(http, protected_call(server, oauth2_policy(server, grant="authorization_code")))
    assert problem["type"] == ERRORS + "configuration"
    assert "authorization_code" in problem["detail"]


def test_oidc_discovers_the_token_endpoint(server: LocalServer) -> None:
    policy = {"oidc": oauth2_policy(server)["oauth2"]}
    assert http(protected_call(server, policy)) == {"ok": True}
    assert http(protected_call(server, policy)) == {"ok": True}
    assert server.hits["/.well-known/openid-configuration"] == 1
    assert server.hits["/oidc/token"] == 1


# -- OpenAPI --------------------------------------------------------------------------------


DOCUMENTS = ["/v2/swagger.json", "/v3/openapi.yaml"]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_openapi_operation_by_id(server: LocalServer, path: str) -> None:
    document = {"endpoint": server.url + path}
    pet = openapi({"document": document, "operationId": "getPetById", "parameters": {"petId": 1}})
    assert pet["name"] == "milou"
    pets = openapi(
        {
            "document": document,
            "operationId": "findPetsByStatus",
            "parameters": {"status": "available"},
        }
    )
    assert [p["id"] for p in pets] == [1]
    assert server.hits[path] == 1  # the description is fetched once


@pytest.mark.parametrize("path", DOCUMENTS)
def test_openapi_response_output_and_request_body(server: LocalServer, path: str) -> None:
    document = {"endpoint": {"uri": server.url + path}}
    answer = openapi(
        {
            "document": document,
            "operationId": "getPetById",
            "parameters": {"petId": 2},
            "output": "response",
        }
    )
    assert answer["request"]["uri"] == server.url + "/v2/pet/2"
    assert answer["statusCode"] == 200 and answer["content"]["id"] == 2
    created = openapi(
        {"document": document, "operationId": "addPet", "parameters": {"body": {"name": "rex"}}}
    )
    assert created == {"id": 3, "name": "rex"}


def test_openapi_array_query_parameter_repeats(server: LocalServer) -> None:
    pets = openapi(
        {
            "document": {"endpoint": server.url + "/v2/swagger.json"},
            "operationId": "findPetsByStatus",
            "parameters": {"status": ["available", "pending"]},
        }
    )
    assert sorted(p["id"] for p in pets) == [1, 2]


def test_openapi_unknown_operation_suggests_known_ids(server: LocalServer) -> None:
    document = {"endpoint": server.url + "/v2/swagger.json"}
    problem = fault(openapi, {"document": document, "operationId": "getPetByID"})
    assert problem["type"] == ERRORS + "configuration"
    assert "no operation 'getPetByID'" in problem["detail"]
    assert "did you mean 'getPetById'" in problem["detail"]
    other = fault(openapi, {"document": document, "operationId": "launchRocket"})
    assert "addPet, findPetsByStatus, getPetById" in other["detail"]


def test_openapi_missing_required_parameter(server: LocalServer) -> None:
    document = {"endpoint": server.url + "/v3/openapi.yaml"}
    problem = fault(openapi, {"document": document, "operationId": "getPetById"})
    assert (problem["type"], problem["status"]) == (ERRORS + "validation", 400)
    assert "'petId' (in path)" in problem["detail"]


def test_openapi_not_found_is_a_communication_error(server: LocalServer) -> None:
    document = {"endpoint": server.url + "/v2/swagger.json"}
    problem = fault(
        openapi, {"document": document, "operationId": "getPetById", "parameters": {"petId": 9}}
    )
    assert (problem["type"], problem["status"]) == (ERRORS + "communication", 404)


def test_openapi_document_that_is_not_a_description(server: LocalServer) -> None:
    problem = fault(openapi, {"document": {"endpoint": server.url + "/text"}, "operationId": "x"})
    assert problem["type"] == ERRORS + "configuration"
    assert "not an OpenAPI or Swagger document" in problem["detail"]
