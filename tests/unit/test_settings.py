"""settings: defaults, TRAINFORGE_* overrides, config.toml, and TRAINFORGE_ACCESS_KEYS."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainforge.settings import AccessKey, RoleSource, Settings, load_settings


def env(home: Path, **values: str) -> dict[str, str]:
    return {"TRAINFORGE_HOME": str(home), **values}


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings == Settings(home=tmp_path)
    assert settings.region == "us-east-1"
    assert settings.account_id == "000000000000"
    assert settings.stop_grace_seconds == 120.0
    assert settings.pass_aws_credentials is False
    assert settings.keep_containers is False
    assert settings.host == "127.0.0.1"
    assert settings.port == 8443
    assert settings.server_url is None
    assert settings.strict_admission is False
    assert settings.access_keys == ()
    assert settings.max_concurrent_jobs == 0
    assert settings.capacity_cpus is None
    assert settings.capacity_memory_mib is None
    assert settings.capacity_gpus is None
    assert settings.lease_seconds == 30.0
    assert settings.heartbeat_seconds == 5.0
    assert settings.db_path == tmp_path / "trainforge.db"
    assert settings.jobs_dir == tmp_path / "jobs"


def test_home_defaults_to_dot_trainforge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings({}).home == tmp_path / ".trainforge"
    assert load_settings({"TRAINFORGE_HOME": "~/elsewhere"}).home == tmp_path / "elsewhere"


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        env(
            tmp_path,
            TRAINFORGE_ACCOUNT_ID="123456789012",
            TRAINFORGE_STOP_GRACE_SECONDS="3",
            TRAINFORGE_PASS_AWS_CREDENTIALS="yes",
            TRAINFORGE_KEEP_CONTAINERS="On",
            TRAINFORGE_KEEP_WORKSPACES="0",
            TRAINFORGE_HOST="0.0.0.0",
            TRAINFORGE_PORT="9000",
            TRAINFORGE_SERVER_URL="http://127.0.0.1:9000",
            TRAINFORGE_STRICT_ADMISSION="TRUE",
            TRAINFORGE_MAX_CONCURRENT_JOBS="2",
            TRAINFORGE_CAPACITY_CPUS="6.5",
            TRAINFORGE_CAPACITY_MEMORY_MIB="4096",
            TRAINFORGE_CAPACITY_GPUS="1",
            TRAINFORGE_LEASE_SECONDS="10",
            TRAINFORGE_HEARTBEAT_SECONDS="0.5",
        )
    )
    assert settings.account_id == "123456789012"
    assert settings.stop_grace_seconds == 3.0
    assert settings.pass_aws_credentials is True
    assert settings.keep_containers is True
    assert settings.keep_workspaces is False
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.server_url == "http://127.0.0.1:9000"
    assert settings.strict_admission is True
    assert settings.max_concurrent_jobs == 2
    assert settings.capacity_cpus == 6.5
    assert settings.capacity_memory_mib == 4096
    assert settings.capacity_gpus == 1
    assert settings.lease_seconds == 10.0
    assert settings.heartbeat_seconds == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" Yes ", True), ("on", True), ("0", False), ("no", False)],
)
def test_boolean_words(tmp_path: Path, raw: str, expected: bool) -> None:
    settings = load_settings(env(tmp_path, TRAINFORGE_STRICT_ADMISSION=raw))
    assert settings.strict_admission is expected


def test_empty_environment_values_are_ignored(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, TRAINFORGE_PORT="", TRAINFORGE_ACCESS_KEYS=""))
    assert settings.port == 8443
    assert settings.access_keys == ()


def test_bad_number_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_settings(env(tmp_path, TRAINFORGE_PORT="eighty"))


@pytest.mark.parametrize(
    ("values", "region"),
    [
        ({}, "us-east-1"),
        ({"AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-3"),
        ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-3"}, "ap-south-1"),
        (
            {
                "TRAINFORGE_REGION": "us-west-2",
                "AWS_REGION": "ap-south-1",
                "AWS_DEFAULT_REGION": "eu-west-3",
            },
            "us-west-2",
        ),
        ({"TRAINFORGE_REGION": "", "AWS_REGION": "ap-south-1"}, "ap-south-1"),
    ],
)
def test_region_fallbacks(tmp_path: Path, values: dict[str, str], region: str) -> None:
    assert load_settings(env(tmp_path, **values)).region == region


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "\n".join(
            [
                'region = "eu-central-1"',
                "stop_grace_seconds = 30",
                "strict_admission = true",
                'keep_containers = "yes"',
                "port = 9100",
                'access_keys = "FILEKEY:filesecret"',
                "capacity_gpus = 2",
            ]
        ),
        encoding="utf-8",
    )
    settings = load_settings(env(tmp_path))
    assert settings.region == "eu-central-1"
    assert settings.stop_grace_seconds == 30.0
    assert settings.strict_admission is True
    assert settings.keep_containers is True
    assert settings.port == 9100
    assert settings.capacity_gpus == 2
    assert settings.access_keys == (AccessKey("FILEKEY", "filesecret"),)


def test_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'port = 9100\nregion = "eu-central-1"\naccess_keys = "FILEKEY:s"\n', encoding="utf-8"
    )
    settings = load_settings(
        env(
            tmp_path,
            TRAINFORGE_PORT="9200",
            TRAINFORGE_REGION="sa-east-1",
            TRAINFORGE_ACCESS_KEYS="ENVKEY:e",
        )
    )
    assert settings.port == 9200
    assert settings.region == "sa-east-1"
    assert settings.access_keys == (AccessKey("ENVKEY", "e"),)


def test_config_file_region_wins_over_the_aws_region_fallback(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('region = "eu-central-1"\n', encoding="utf-8")
    settings = load_settings(env(tmp_path, AWS_REGION="us-west-2"))
    assert settings.region == "eu-central-1"


def test_trainforge_config_points_at_another_file(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("max_concurrent_jobs = 4\n", encoding="utf-8")
    (tmp_path / "config.toml").write_text("max_concurrent_jobs = 9\n", encoding="utf-8")
    settings = load_settings(env(tmp_path, TRAINFORGE_CONFIG=str(config)))
    assert settings.max_concurrent_jobs == 4
    missing = load_settings(env(tmp_path, TRAINFORGE_CONFIG=str(tmp_path / "none.toml")))
    assert missing.max_concurrent_jobs == 0


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("AKID:secret", (AccessKey("AKID", "secret"),)),
        (
            "A1:s1, A2:s2 ,",
            (AccessKey("A1", "s1"), AccessKey("A2", "s2")),
        ),
        ("A1:sec:ret", (AccessKey("A1", "sec:ret"),)),
        (" , ", ()),
    ],
)
def test_access_keys(tmp_path: Path, raw: str, keys: tuple[AccessKey, ...]) -> None:
    assert load_settings(env(tmp_path, TRAINFORGE_ACCESS_KEYS=raw)).access_keys == keys


@pytest.mark.parametrize("raw", ["AKID", "AKID:", ":secret", "A:s,broken"])
def test_bad_access_keys(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ValueError) as info:
        load_settings(env(tmp_path, TRAINFORGE_ACCESS_KEYS=raw))
    assert str(info.value) == "TRAINFORGE_ACCESS_KEYS must be ID:SECRET pairs separated by commas"


def test_with_overrides(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    changed = settings.with_overrides(port=1, strict_admission=True)
    assert (changed.port, changed.strict_admission) == (1, True)
    assert (settings.port, settings.strict_admission) == (8443, False)


def test_config_file_mistakes_name_the_file_and_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("prot = 9000\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"config.toml: unknown setting 'prot'"):
        load_settings(env(tmp_path))
    config.write_text("port = [\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"config.toml: "):
        load_settings(env(tmp_path))
    config.write_text('port = "abc"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"port in .*config.toml must be an int, not 'abc'"):
        load_settings(env(tmp_path))


def test_environment_mistakes_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TRAINFORGE_PORT must be an int, not 'abc'"):
        load_settings(env(tmp_path, TRAINFORGE_PORT="abc"))
    with pytest.raises(ValueError, match="TRAINFORGE_STOP_GRACE_SECONDS must not be negative"):
        load_settings(env(tmp_path, TRAINFORGE_STOP_GRACE_SECONDS="-5"))
    with pytest.raises(ValueError, match="TRAINFORGE_ENGINE must be one of docker, swarm"):
        load_settings(env(tmp_path, TRAINFORGE_ENGINE="kubernetes"))


def test_spot_interruptions_per_hour(tmp_path: Path) -> None:
    assert load_settings(env(tmp_path)).spot_interruptions_per_hour == 0.0
    settings = load_settings(env(tmp_path, TRAINFORGE_SPOT_INTERRUPTIONS_PER_HOUR="2.5"))
    assert settings.spot_interruptions_per_hour == 2.5
    with pytest.raises(
        ValueError, match="TRAINFORGE_SPOT_INTERRUPTIONS_PER_HOUR must not be negative"
    ):
        load_settings(env(tmp_path, TRAINFORGE_SPOT_INTERRUPTIONS_PER_HOUR="-1"))


def test_role_credentials_map_roles_to_profiles_or_keys() -> None:
    settings = load_settings(
        {
            "TRAINFORGE_HOME": "/tmp/tf-home",
            "TRAINFORGE_ROLE_CREDENTIALS": (
                "arn:aws:iam::1:role/a=profile:team-a; arn:aws:iam::1:role/b=x=keys:AKIDB:sec:ret"
            ),
        }
    )
    mapping = settings.role_mapping
    assert mapping["arn:aws:iam::1:role/a"] == RoleSource(profile="team-a")
    # A role name may hold '='; a secret may hold ':'.
    assert mapping["arn:aws:iam::1:role/b=x"] == RoleSource(keys=AccessKey("AKIDB", "sec:ret"))
    assert "sec:ret" not in repr(mapping)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRAINFORGE_ROLE_CREDENTIALS", "arn:aws:iam::1:role/a=team-a", "ROLE_ARN=profile:NAME"),
        ("TRAINFORGE_CREDENTIALS_DURATION_SECONDS", "600", "at least 900"),
    ],
)
def test_bad_credentials_settings_are_refused_at_start(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings({"TRAINFORGE_HOME": "/tmp/tf-home", variable: value})
