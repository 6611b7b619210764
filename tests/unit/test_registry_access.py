"""Issue 12, images from private registries, the pure parts: which registry an image reference
names, which hosts are ECR's (every partition's form), the ECR login cache, and which login a
pull gets (configured, from a Docker config file, ECR's, or the engine's own)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from trainforge.clients.ecr import EcrLogin, EcrRegistry, Token, ecr_registry, fetch_token
from trainforge.domain.images import (
    ImageSource,
    RegistryAuth,
    at_registry,
    registry_of,
    split_tag,
)
from trainforge.errors import ImageNotFound, RegistryLoginFailed
from trainforge.runtime.registry import RegistryAccess
from trainforge.settings import load_settings, parse_registry_auth

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("ref", "registry"),
    [
        ("busybox", "docker.io"),
        ("trainforge/busybox:1", "docker.io"),
        ("localhost/x:1", "localhost"),
        ("127.0.0.1:5000/team/x:1", "127.0.0.1:5000"),
        ("Registry.Example.com/x@sha256:ab", "registry.example.com"),
        (f"{ECR}/repo:tag", ECR),
    ],
)
def test_registry_of_follows_dockers_rule(ref: str, registry: str) -> None:
    assert registry_of(ref) == registry


def test_tags_digests_and_other_registries() -> None:
    assert split_tag("127.0.0.1:5000/team/x:1") == ("127.0.0.1:5000/team/x", "1")
    assert split_tag("127.0.0.1:5000/team/x") == ("127.0.0.1:5000/team/x", None)
    assert split_tag("x@sha256:ab") == ("x@sha256:ab", None)
    assert at_registry(f"{ECR}/team/repo:tag", "127.0.0.1:5000") == "127.0.0.1:5000/team/repo:tag"
    assert at_registry("busybox:1", "mirror:5000") == "mirror:5000/busybox:1"


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1"),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
        ("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1"),
        ("123456789012.dkr-ecr.ap-south-1.on.aws", "ap-south-1"),
    ],
)
def test_ecr_hosts_of_every_partition(host: str, region: str) -> None:
    assert ecr_registry(host) == EcrRegistry(host, "123456789012", region)


@pytest.mark.parametrize(
    "host",
    [
        "public.ecr.aws",
        "docker.io",
        "127.0.0.1:5000",
        "12345.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    ],
)
def test_other_hosts_are_not_ecr(host: str) -> None:
    assert ecr_registry(host) is None


def test_an_ecr_login_is_kept_until_its_token_is_about_to_expire() -> None:
    now = [1000.0]
    calls: list[str] = []

    def fetch(registry: EcrRegistry) -> Token:
        calls.append(registry.host)
        return Token(RegistryAuth("AWS", f"token-{len(calls)}", registry.host), now[0] + 3600)

    login = EcrLogin(fetch, clock=lambda: now[0])
    registry = ecr_registry(ECR)
    other = ecr_registry("210987654321.dkr.ecr.eu-west-1.amazonaws.com")
    assert registry is not None and other is not None
    assert login.auth_for(registry).password == "token-1"
    now[0] += 3000
    assert login.auth_for(registry).password == "token-1"
    assert login.auth_for(other).password == "token-2"
    now[0] += 560  # less than a minute of the first token left: a pull could outlive it
    assert login.auth_for(registry).password == "token-3"
    assert calls == [ECR, other.host, ECR]


def test_an_unreachable_ecr_endpoint_is_a_login_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    registry = ecr_registry(ECR)
    assert registry is not None
    with pytest.raises(RegistryLoginFailed) as caught:
        fetch_token(registry)
    assert str(caught.value).startswith(f"the ECR login for {ECR} failed: GetAuthorizationToken")
    assert isinstance(caught.value, ImageNotFound)  # a ClientError for the job


class _Ecr(EcrLogin):
    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error
        self.asked: list[str] = []

    def auth_for(self, registry: EcrRegistry) -> RegistryAuth:
        self.asked.append(registry.host)
        if self.error:
            raise RegistryLoginFailed(self.error)
        return RegistryAuth("AWS", "ecr-token", f"https://{registry.host}")


def test_which_login_a_pull_gets(tmp_path: Path) -> None:
    ecr = _Ecr()
    access = RegistryAccess({"Reg.example:5000": ("me", "pw")}, ecr=ecr)
    assert access.source("reg.example:5000/x:1") == ImageSource(
        "reg.example:5000/x:1", RegistryAuth("me", "pw", "reg.example:5000")
    )
    # Unconfigured and not ECR: the engine's own credentials (the Docker configuration).
    assert access.source("other.example/x:1") == ImageSource("other.example/x:1")
    assert access.source("busybox") == ImageSource("busybox")
    assert ecr.asked == []
    assert access.source(f"{ECR}/repo:tag") == ImageSource(
        f"{ECR}/repo:tag", RegistryAuth("AWS", "ecr-token", f"https://{ECR}")
    )
    assert ecr.asked == [ECR]


def test_ecr_images_from_a_configured_ecr_endpoint() -> None:
    access = RegistryAccess({}, ecr_endpoint="http://127.0.0.1:5000/", ecr=_Ecr())
    assert access.source(f"{ECR}/team/repo:tag") == ImageSource(
        "127.0.0.1:5000/team/repo:tag", RegistryAuth("AWS", "ecr-token", "127.0.0.1:5000")
    )


def test_a_failed_ecr_login_names_the_image() -> None:
    access = RegistryAccess({}, ecr=_Ecr("the ECR login for x failed: AccessDenied"))
    with pytest.raises(RegistryLoginFailed) as caught:
        access.source(f"{ECR}/repo:tag")
    assert str(caught.value) == (
        f"The training image {ECR}/repo:tag could not be pulled: the ECR login for x failed: "
        "AccessDenied"
    )


def test_logins_from_a_docker_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    auth = base64.b64encode(b"me:p:w").decode()
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "http://reg.example:5000/": {"auth": auth},
                    "https://index.docker.io/v1/": {"username": "hub", "password": "hubpw"},
                    "broken.example": {"auth": "not base64!"},
                }
            }
        )
    )
    access = RegistryAccess({}, auth_file=str(path), ecr=_Ecr())
    assert access.source("reg.example:5000/x").auth == RegistryAuth("me", "p:w", "reg.example:5000")
    assert access.source("team/x:1").auth == RegistryAuth("hub", "hubpw", "docker.io")
    assert access.source("unknown.example/x").auth is None
    with pytest.raises(RegistryLoginFailed, match=r"broken.example/x could not be pulled: the "):
        access.source("broken.example/x")
    path.write_text("{not json")
    with pytest.raises(RegistryLoginFailed, match="TRAINFORGE_REGISTRY_AUTH_FILE"):
        access.source("reg.example:5000/x")


def test_registry_auth_setting(tmp_path: Path) -> None:
    assert parse_registry_auth(" a.example=u:p:q , B.example:5000=v:w ") == {
        "a.example": ("u", "p:q"),
        "b.example:5000": ("v", "w"),
    }
    settings = load_settings(
        {"TRAINFORGE_HOME": str(tmp_path), "TRAINFORGE_REGISTRY_AUTH": "a.example=u:secret-pw"}
    )
    assert "secret-pw" not in repr(settings)
    with pytest.raises(ValueError, match=r"'a\.example'") as caught:
        load_settings(
            {"TRAINFORGE_HOME": str(tmp_path), "TRAINFORGE_REGISTRY_AUTH": "a.example=s3kr1t"}
        )
    assert "s3kr1t" not in str(caught.value)


def test_a_login_never_shows_its_password_in_a_repr() -> None:
    source = ImageSource("r.example/x", RegistryAuth("me", "pw-secret-1", "r.example"))
    assert "pw-secret-1" not in repr(source)
    assert "me" in repr(source)
