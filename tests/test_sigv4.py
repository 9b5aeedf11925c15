"""AWS Signature Version 4: AWS's published test vectors, then real signed calls through the gateway.

The vectors are AWS's own files, not output of this signer: the `aws-sig-v4-test-suite` cases (each a
request with its expected canonical request, string to sign and Authorization header; credentials
AKIDEXAMPLE, region us-east-1, service "service", signed at 20150830T123600Z), the STS session-token case
of the same suite, and the worked examples of AWS's documentation for IAM (ListUsers) and S3 (GetObject
with a Range header, whose credentials and date differ). Two cases of the suite are left out because
AWS's own files for them disagree with each other (`post-x-www-form-urlencoded*`: their `.sts` was not
computed from the `.creq` beside it).

The end-to-end tests sign real requests with credentials from the standard chain (environment variables,
a container credentials endpoint on 127.0.0.1) and check each signature on the upstream's side with an
independent verifier written from the SigV4 specification.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from botocore.credentials import ReadOnlyCredentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth.provider import CredentialError, OutboundRequest
from gateway.auth.settings import ANONYMOUS, UpstreamCredential
from gateway.auth.sigv4 import AwsSigV4, sign
from gateway.calls.pipeline import call_tool
from gateway.config import config_from_args
from gateway.runtime import load_gateway, open_backends
from tests.conftest import ServerThread
from tests.gateway_harness import text_of
from tests.test_upstream_auth import SPEC, Recorder

pytestmark = pytest.mark.anyio

SUITE_CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HOST = "example.amazonaws.com"
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YU"
    "uwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8"
    "YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICC"
    "R/oLxBA=="
)


def _creq(method: str, path: str, query: str, headers: str, signed: str) -> str:
    return f"{method}\n{path}\n{query}\n{headers}\n\n{signed}\n{EMPTY_SHA256}"


def _sts(digest: str) -> str:
    return f"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{digest}"


def _authz(signed: str, signature: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}"


PLAIN = f"host:{HOST}\nx-amz-date:20150830T123600Z"
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# (name, method, path, query pairs, extra headers, canonical request, string to sign, authorization), from
# the aws-sig-v4-test-suite files (.req, .creq, .sts, .authz) as AWS publishes them.
SUITE = [
    ("get-vanilla", "GET", "/", [], [],
     _creq("GET", "/", "", PLAIN, "host;x-amz-date"),
     _sts("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"),
     _authz("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
    ("get-vanilla-empty-query-key", "GET", "/", [("Param1", "value1")], [],
     _creq("GET", "/", "Param1=value1", PLAIN, "host;x-amz-date"),
     _sts("1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab"),
     _authz("host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb")),
    ("get-vanilla-query-order-key", "GET", "/", [("Param1", "value2"), ("Param1", "Value1")], [],
     _creq("GET", "/", "Param1=Value1&Param1=value2", PLAIN, "host;x-amz-date"),
     _sts("704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"),
     _authz("host;x-amz-date", "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1")),
    ("get-vanilla-query-order-key-case", "GET", "/", [("Param2", "value2"), ("Param1", "value1")], [],
     _creq("GET", "/", "Param1=value1&Param2=value2", PLAIN, "host;x-amz-date"),
     _sts("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"),
     _authz("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")),
    ("get-vanilla-query-order-value", "GET", "/", [("Param1", "value2"), ("Param1", "value1")], [],
     _creq("GET", "/", "Param1=value1&Param1=value2", PLAIN, "host;x-amz-date"),
     _sts("c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606"),
     _authz("host;x-amz-date", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694")),
    ("get-vanilla-query-unreserved", "GET", "/", [(UNRESERVED, UNRESERVED)], [],
     _creq("GET", "/", f"{UNRESERVED}={UNRESERVED}", PLAIN, "host;x-amz-date"),
     _sts("c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177"),
     _authz("host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197")),
    ("get-vanilla-utf8-query", "GET", "/", [("\u1234", "bar")], [],
     _creq("GET", "/", "%E1%88%B4=bar", PLAIN, "host;x-amz-date"),
     _sts("eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073"),
     _authz("host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04")),
    ("get-unreserved", "GET", f"/{UNRESERVED}", [], [],
     _creq("GET", f"/{UNRESERVED}", "", PLAIN, "host;x-amz-date"),
     _sts("6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9"),
     _authz("host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f")),
    ("get-header-key-duplicate", "GET", "/", [],
     [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
     _creq("GET", "/", "", f"host:{HOST}\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z",
           "host;my-header1;x-amz-date"),
     _sts("dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c"),
     _authz("host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea")),
    ("get-header-value-order", "GET", "/", [],
     [("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
     _creq("GET", "/", "", f"host:{HOST}\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z",
           "host;my-header1;x-amz-date"),
     _sts("31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86"),
     _authz("host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01")),
    ("get-header-value-trim", "GET", "/", [], [("My-Header1", "value1"), ("My-Header2", '"a   b   c"')],
     _creq("GET", "/", "", f'host:{HOST}\nmy-header1:value1\nmy-header2:"a b c"\nx-amz-date:20150830T123600Z',
           "host;my-header1;my-header2;x-amz-date"),
     _sts("a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"),
     _authz("host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736")),
    ("post-vanilla", "POST", "/", [], [],
     _creq("POST", "/", "", PLAIN, "host;x-amz-date"),
     _sts("553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"),
     _authz("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")),
    ("post-vanilla-query", "POST", "/", [("Param1", "value1")], [],
     _creq("POST", "/", "Param1=value1", PLAIN, "host;x-amz-date"),
     _sts("9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd"),
     _authz("host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")),
    ("post-header-key-sort", "POST", "/", [], [("My-Header1", "value1")],
     _creq("POST", "/", "", f"host:{HOST}\nmy-header1:value1\nx-amz-date:20150830T123600Z",
           "host;my-header1;x-amz-date"),
     _sts("9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65"),
     _authz("host;my-header1;x-amz-date", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c")),
    ("post-header-value-case", "POST", "/", [], [("My-Header1", "VALUE1")],
     _creq("POST", "/", "", f"host:{HOST}\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z",
           "host;my-header1;x-amz-date"),
     _sts("d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93"),
     _authz("host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d")),
]


def suite_request(method: str, path: str, query: list[tuple[str, str]], headers: list[tuple[str, str]]
                  ) -> OutboundRequest:
    """The suite's `.req`: exactly its headers (Host, X-Amz-Date, the case's own), its percent-encoded query."""
    raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    return OutboundRequest(method, f"https://{HOST}{path}" + (f"?{raw_query}" if raw_query else ""),
                           [("Host", HOST), *headers, ("X-Amz-Date", "20150830T123600Z")])


@pytest.mark.parametrize(("name", "method", "path", "query", "headers", "creq", "sts", "authz"), SUITE,
                         ids=[case[0] for case in SUITE])
def test_aws_signature_v4_test_suite(name, method, path, query, headers, creq, sts, authz):
    request = suite_request(method, path, query, headers)
    signature = sign(request, SUITE_CREDENTIALS, region="us-east-1", service="service", now=SUITE_TIME)
    assert signature.canonical_request == creq
    assert signature.string_to_sign == sts
    assert signature.authorization == authz
    assert request.header("authorization") == authz
    assert request.header("x-amz-date") == "20150830T123600Z"


def test_suite_session_token_is_sent_and_signed():
    """`post-sts-header-before`: temporary credentials add X-Amz-Security-Token, which is signed."""
    request = suite_request("POST", "/", [], [])
    credentials = ReadOnlyCredentials(SUITE_CREDENTIALS.access_key, SUITE_CREDENTIALS.secret_key, STS_TOKEN)
    signature = sign(request, credentials, region="us-east-1", service="service", now=SUITE_TIME)
    assert signature.authorization == _authz("host;x-amz-date;x-amz-security-token",
                                             "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")
    assert request.header("x-amz-security-token") == STS_TOKEN


def test_documented_iam_list_users_example():
    """AWS General Reference, "Create a canonical request for Signature Version 4" (IAM ListUsers)."""
    request = OutboundRequest("GET", "https://iam.amazonaws.com/?Version=2010-05-08&Action=ListUsers",
                              [("Host", "iam.amazonaws.com"),
                               ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")])
    signature = sign(request, SUITE_CREDENTIALS, region="us-east-1", service="iam", now=SUITE_TIME)
    assert signature.canonical_request == (
        "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\n"
        f"host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n{EMPTY_SHA256}")
    assert hashlib.sha256(signature.canonical_request.encode()).hexdigest() == \
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    assert signature.authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


def test_documented_s3_get_object_example():
    """Amazon S3 API reference, "Signature calculations for the Authorization header" (GET Object with Range):
    S3 signs the payload hash header and does not encode the path twice."""
    request = OutboundRequest("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                              [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")])
    credentials = ReadOnlyCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)
    signature = sign(request, credentials, region="us-east-1", service="s3", now=datetime(2013, 5, 24, tzinfo=UTC))
    assert signature.canonical_request == (
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        f"x-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\n"
        f"host;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}")
    assert signature.string_to_sign == ("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                                        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    assert signature.authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_signing_headers_already_on_the_request_are_replaced_and_hop_headers_not_signed():
    request = OutboundRequest("POST", "https://api.example/items", [
        ("Host", "api.example"), ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
        ("User-Agent", "semantic-adapter-gateway"), ("Content-Length", "7"), ("Content-Type", "application/json"),
        ("X-Amz-Date", "19990101T000000Z"), ("Authorization", "forged"), ("X-Amz-Security-Token", "forged-token"),
        ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")], b'{"a":1}')
    sign(request, SUITE_CREDENTIALS, region="eu-west-1", service="execute-api", now=SUITE_TIME)
    assert [v for k, v in request.headers if k.lower() == "x-amz-date"] == ["20150830T123600Z"]
    assert not request.has_header("x-amz-security-token") and not request.has_header("x-amz-content-sha256")
    signed = re.search(r"SignedHeaders=([^,]+)", request.header("authorization")).group(1).split(";")
    assert signed == ["accept", "content-length", "content-type", "host", "x-amz-date"]  # no user-agent, connection..


# -- real signed calls -----------------------------------------------------------------------------------------


def verify_sigv4(record: dict[str, Any], secret_key: str) -> dict[str, str]:
    """Check the signature of a request as it arrived, the way an AWS endpoint does, from the specification
    alone; returns the Authorization parameters."""
    headers: dict[str, list[str]] = {}
    for name, value in record["headers"]:
        headers.setdefault(name, []).append(value)
    params = dict(re.findall(r"(\w+)=([^,\s]+)", headers["authorization"][0].removeprefix("AWS4-HMAC-SHA256 ")))
    access_key, date, region, service, terminator = params["Credential"].split("/")
    assert terminator == "aws4_request"
    signed = params["SignedHeaders"].split(";")
    query = sorted((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
                   for k, _, v in (p.partition("=") for p in record["query"].split("&") if p))
    canonical = "\n".join([
        record["method"],
        quote(record["path"], safe="/-_.~"),  # the path as sent, encoded once more (every service but S3)
        "&".join(f"{k}={v}" for k, v in query),
        *(f"{name}:{','.join(' '.join(v.split()) for v in headers[name])}" for name in signed),
        "",
        ";".join(signed),
        hashlib.sha256(record["body"]).hexdigest(),
    ])
    amz_date = headers["x-amz-date"][0]
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/aws4_request",
                                hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest() == params["Signature"]
    assert {"host", "x-amz-date"} <= set(signed) and amz_date.startswith(date)
    return {"access_key": access_key, "region": region, "service": service, **params}


@pytest.fixture
def aws_env(monkeypatch, tmp_path) -> pytest.MonkeyPatch:
    """The AWS credential chain cut off from this machine: no config files, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    with ServerThread(rec.app()) as server:
        yield rec, server.url


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "recorder.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return path


def sigv4_gateway(spec: Path, upstream: str, **settings: Any):
    config = config_from_args(spec=str(spec), upstream=upstream)
    credential = UpstreamCredential(type="aws_sigv4", region="eu-west-1", service="execute-api", **settings)
    return load_gateway(replace(config, backends=(replace(config.backends[0], auth=credential),)))


async def test_calls_are_signed_with_environment_credentials(spec_file, recorder, aws_env):
    rec, url = recorder
    rec.requests.clear()
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAGATEWAYTEST")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-s3cret-key")
    aws_env.setenv("AWS_SESSION_TOKEN", "env-session-t0ken")
    gw = sigv4_gateway(spec_file, url)
    backend = open_backends(gw)["default"]
    try:
        got = await call_tool(gw.tools["echo"], {"item": "a b/c", "q": "x&y=z", "X-Api-Key": "k"}, backend,
                              legacy=False)
        posted = await call_tool(gw.tools["submit"], {"item": "1", "text": "h\u00e9llo"}, backend, legacy=False)
        secrets = backend.secrets()
    finally:
        await backend.aclose()
    assert not got.is_error and not posted.is_error, text_of(got) + text_of(posted)
    for record in rec.requests:
        params = verify_sigv4(record, "env-s3cret-key")
        assert (params["access_key"], params["region"], params["service"]) == \
            ("AKIAGATEWAYTEST", "eu-west-1", "execute-api")
        assert ("x-amz-security-token", "env-session-t0ken") in record["headers"]
    assert rec.requests[0]["path"] == "/echo/a%20b%2Fc" and rec.requests[0]["query"] == "q=x%26y%3Dz"
    assert "x-api-key" in verify_sigv4(rec.requests[0], "env-s3cret-key")["SignedHeaders"].split(";")
    assert "content-type" in verify_sigv4(rec.requests[1], "env-s3cret-key")["SignedHeaders"].split(";")
    assert set(secrets) == {"env-s3cret-key", "env-session-t0ken"}


async def test_container_credentials_are_refreshed_before_they_expire(spec_file, recorder, aws_env):
    """ECS/EKS-style credentials from a container endpoint, which expire: botocore refreshes them ahead of
    time, and the gateway signs each call with the current ones."""
    rec, url = recorder
    rec.requests.clear()
    served = itertools.count(1)

    async def credentials(request: Request) -> JSONResponse:
        n = next(served)
        expiration = datetime.now(UTC) + timedelta(minutes=11)  # inside botocore's advisory refresh window
        return JSONResponse({"AccessKeyId": f"ASIACONTAINER{n}", "SecretAccessKey": f"container-secret-{n}",
                             "Token": f"container-token-{n}", "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")})

    with ServerThread(Starlette(routes=[Route("/creds", credentials)])) as endpoint:
        aws_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{endpoint.url}/creds")
        gw = sigv4_gateway(spec_file, url)
        backend = open_backends(gw)["default"]
        try:
            for _ in range(2):
                result = await call_tool(gw.tools["echo"], {"item": "x"}, backend, legacy=False)
                assert not result.is_error, text_of(result)
        finally:
            await backend.aclose()
    keys = []
    for record in rec.requests:
        token = dict(record["headers"])["x-amz-security-token"]
        n = token.rsplit("-", 1)[1]
        keys.append(verify_sigv4(record, f"container-secret-{n}")["access_key"])
    assert keys[0] != keys[1] and all(k.startswith("ASIACONTAINER") for k in keys)


async def test_missing_credentials_are_a_clear_tool_error(spec_file, recorder, aws_env):
    rec, url = recorder
    rec.requests.clear()
    for settings, expected in (({}, "found no AWS credentials"),
                               ({"profile": "nope"}, "the AWS profile 'nope' does not exist")):
        gw = sigv4_gateway(spec_file, url, **settings)
        backend = open_backends(gw)["default"]
        try:
            result = await call_tool(gw.tools["echo"], {"item": "x"}, backend, legacy=False)
        finally:
            await backend.aclose()
        assert result.is_error and f"could not obtain credentials for backend 'default': {expected}" in text_of(result)
    assert rec.requests == []


async def test_provider_reports_no_credentials_as_a_credential_error(aws_env):
    provider = AwsSigV4(region="us-east-1", service="lambda")
    with pytest.raises(CredentialError, match="found no AWS credentials"):
        await provider.apply(OutboundRequest("GET", "https://abc.lambda-url.us-east-1.on.aws/"), ANONYMOUS)
    assert provider.secrets() == ()
