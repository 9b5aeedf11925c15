"""Microsoft Entra ID tokens: an app registration (client secret or certificate) or a managed identity.

An app registration is plain OAuth client credentials against `{authority}/{tenant}/oauth2/v2.0/token`
with `scope` = the resource's `.default` scope, so it reuses `ClientCredentials`: the secret goes in the
form (client_secret_post, what Entra documents), a certificate signs a private_key_jwt assertion whose
`x5t` header names the certificate.

A managed identity gets its token from the platform instead, by a GET to a local endpoint: App Service,
Functions and Container Apps set IDENTITY_ENDPOINT and IDENTITY_HEADER; elsewhere (VMs, AKS with pod
identity) the instance metadata service answers at 169.254.169.254. These are called with httpx2, like
every token endpoint (`gateway.auth.oauth`), rather than through azure-identity: two small GETs do not
need its credential chain.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx2

from gateway.auth.oauth import (
    AccessToken,
    CachedToken,
    ClientAuth,
    ClientCredentials,
    PrivateKeyJwt,
    TokenEndpoint,
    parse_token_response,
)
from gateway.auth.provider import CredentialError, OutboundRequest, set_bearer
from gateway.auth.settings import Identity, UpstreamCredential

IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"


def app_registration(cred: UpstreamCredential, http: httpx2.AsyncClient) -> ClientCredentials:
    """Client credentials for an Entra app registration; `ValueError` if its certificate cannot be used."""
    assert cred.client_id is not None and cred.tenant_id is not None
    token_url = f"{cred.authority.rstrip('/')}/{cred.tenant_id}/oauth2/v2.0/token"
    signer = certificate_signer(Path(cred.certificate_path)) if cred.certificate_path else None
    client = ClientAuth(cred.client_id, secret=cred.client_secret, method="post", signer=signer)
    return ClientCredentials(TokenEndpoint(token_url, client, http), scopes=cred.scopes)


def certificate_signer(path: Path) -> PrivateKeyJwt:
    """A private_key_jwt signer from one PEM file holding the private key and its certificate."""
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not PEM text"
        raise ValueError(f"cannot read {path}: {reason}") from None
    from cryptography import x509  # loaded only where a certificate is used

    try:
        certificate = x509.load_pem_x509_certificates(data.encode("utf-8"))[0]
    except ValueError:
        raise ValueError(f"{path} holds no PEM certificate (it needs the private key and the certificate)") from None
    try:
        return PrivateKeyJwt(data, certificate=certificate)
    except ValueError as exc:
        raise ValueError(f"{path} {exc}") from None


class ManagedIdentity:
    """A token for `resource` from the platform's managed identity endpoint, cached until shortly before expiry.

    `client_id` selects a user-assigned identity; None means the system-assigned one.
    """

    def __init__(self, resource: str, *, client_id: str | None, http: httpx2.AsyncClient) -> None:
        params = {"resource": resource, **({"client_id": client_id} if client_id else {})}
        endpoint, header = os.environ.get("IDENTITY_ENDPOINT"), os.environ.get("IDENTITY_HEADER")
        if endpoint and header:
            self._url, self._header = endpoint, header
            self._params = {"api-version": "2019-08-01", **params}
            self._headers = {"X-IDENTITY-HEADER": header}
        else:
            self._url, self._header = IMDS_TOKEN_URL, None
            self._params = {"api-version": "2018-02-01", **params}
            self._headers = {"Metadata": "true"}
        self._http = http
        self._token = CachedToken()

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        return set_bearer(request, await self._token.get(self._fetch))

    async def _fetch(self) -> AccessToken:
        try:
            response = await self._http.get(self._url, params=self._params, headers=self._headers)
        except httpx2.HTTPError as exc:
            raise CredentialError(f"could not reach the managed identity endpoint ({type(exc).__name__})") from None
        return parse_token_response(response, "the managed identity endpoint")

    async def aclose(self) -> None:
        await self._http.aclose()

    def secrets(self) -> tuple[str, ...]:
        token = self._token.current
        return (*((self._header,) if self._header else ()), *((token.value,) if token is not None else ()))


def managed_identity_resource(scopes: tuple[str, ...]) -> str:
    """The one resource a managed identity token is for: its scope without the `/.default` suffix."""
    if len(scopes) != 1:
        raise ValueError("a managed identity token is for one resource: give exactly one scope, e.g. "
                         "https://management.azure.com/.default")
    return scopes[0].removesuffix("/.default")
