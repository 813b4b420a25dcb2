"""The azure driver's settings, credentials and its one check at start."""

from __future__ import annotations

from typing import Any

import pytest
from arm_server import ArmServer
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure_harness import fast_settings

from shim.drivers.azure import AzureConfigurationError, AzureDriver, AzureSettings
from shim.drivers.azure_settings import StaticTokenCredential, make_credential

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"


def test_missing_settings_are_named_together_with_their_flags_and_variables() -> None:
    with pytest.raises(AzureConfigurationError) as err:
        AzureSettings.from_env_and_flags(environ={})
    assert str(err.value) == (
        "the azure driver needs --azure-subscription-id (or AZURE_SUBSCRIPTION_ID)"
        " and --azure-resource-group (or CLOUDBACKUP_AZURE_RESOURCE_GROUP)"
    )


def test_a_single_missing_setting_is_named_alone() -> None:
    with pytest.raises(
        AzureConfigurationError, match=r"needs --azure-resource-group \(or CLOUDBACKUP"
    ) as err:
        AzureSettings.from_env_and_flags(environ={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION})
    assert "subscription" not in str(err.value)


def test_settings_come_from_the_contracts_environment_variables() -> None:
    settings = AzureSettings.from_env_and_flags(
        environ={
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "CLOUDBACKUP_AZURE_RESOURCE_GROUP": "backups",
            "CLOUDBACKUP_AZURE_ENDPOINT": "https://management.usgovcloudapi.net/",
            "CLOUDBACKUP_AZURE_ACCESS_TOKEN": "tok",
        }
    )
    assert settings.subscription_id == SUBSCRIPTION
    assert settings.resource_group == "backups"
    assert settings.endpoint == "https://management.usgovcloudapi.net"
    assert settings.access_token == "tok"
    assert settings.connection_verify is True
    assert "tok" not in repr(settings)


def test_flags_win_over_environment_variables_and_the_endpoint_has_a_default() -> None:
    settings = AzureSettings.from_env_and_flags(
        subscription_id=SUBSCRIPTION,
        resource_group="from-flag",
        environ={
            "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
            "CLOUDBACKUP_AZURE_RESOURCE_GROUP": "env",
        },
    )
    assert (settings.subscription_id, settings.resource_group) == (SUBSCRIPTION, "from-flag")
    assert settings.endpoint == "https://management.azure.com"


def test_requests_ca_bundle_becomes_the_connection_verify_path(tmp_path: Any) -> None:
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = AzureSettings.from_env_and_flags(
        subscription_id=SUBSCRIPTION, resource_group="rg", environ={"REQUESTS_CA_BUNDLE": str(bundle)}
    )
    assert settings.connection_verify == str(bundle)


def test_malformed_settings_are_all_reported_at_once(tmp_path: Any) -> None:
    with pytest.raises(AzureConfigurationError) as err:
        AzureSettings.from_env_and_flags(
            subscription_id="my-subscription",
            resource_group="rg",
            endpoint="http://management.azure.com",
            environ={"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")},
        )
    message = str(err.value)
    assert "must be a GUID" in message
    assert "must be an https:// URL" in message
    assert "missing.pem" in message and "is not a file" in message


def test_a_static_token_is_used_when_one_is_given_and_its_jwt_expiry_is_read() -> None:
    # header.payload.signature with payload {"exp": 2000000000}
    jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOiAyMDAwMDAwMDAwfQ.c2ln"
    credential = make_credential(AzureSettings(SUBSCRIPTION, "rg", access_token=jwt))
    assert isinstance(credential, StaticTokenCredential)
    assert credential.get_token("https://management.azure.com/.default") == AccessToken(jwt, 2000000000)


def test_without_a_token_the_credential_is_azure_identitys_default_chain() -> None:
    from azure.identity import DefaultAzureCredential

    credential = make_credential(AzureSettings(SUBSCRIPTION, "rg"))
    try:
        assert isinstance(credential, DefaultAzureCredential)
    finally:
        credential.close()


class _NoToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials"
        )


def test_a_credential_that_cannot_get_a_token_is_one_clear_error_at_start(arm: ArmServer) -> None:
    with pytest.raises(AzureConfigurationError) as err:
        AzureDriver(fast_settings(arm), credential=_NoToken())
    message = str(err.value)
    assert message.startswith(f"the azure driver could not authenticate to {arm.url}")
    assert "failed to retrieve a token" in message
    assert "CLOUDBACKUP_AZURE_ACCESS_TOKEN" in message


def test_a_token_azure_refuses_is_one_clear_error_at_start(arm: ArmServer) -> None:
    with pytest.raises(AzureConfigurationError, match=r"could not authenticate.*InvalidAuthenticationToken"):
        AzureDriver(fast_settings(arm, access_token="expired"))


def test_a_missing_resource_group_is_one_clear_error_at_start(arm: ArmServer) -> None:
    with pytest.raises(AzureConfigurationError) as err:
        AzureDriver(fast_settings(arm, resource_group="nowhere"))
    assert "ResourceGroupNotFound" in str(err.value)
    assert "create the resource group nowhere" in str(err.value)


def test_an_endpoint_whose_certificate_is_not_trusted_is_one_clear_error_at_start(arm: ArmServer) -> None:
    with pytest.raises(AzureConfigurationError, match=f"cannot reach {arm.url}.*REQUESTS_CA_BUNDLE"):
        AzureDriver(fast_settings(arm, connection_verify=True, retry_total=0))


def test_without_settings_the_driver_reads_the_flags_it_is_given_and_the_environment(
    arm: ArmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDBACKUP_AZURE_ACCESS_TOKEN", arm.token or "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(arm.ca_path))
    monkeypatch.setenv("CLOUDBACKUP_AZURE_RESOURCE_GROUP", "cloudbackup-test")
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)

    driver = AzureDriver(subscription_id=arm.subscription_id, resource_group=None, endpoint=arm.url)
    try:
        assert driver.settings.resource_group == "cloudbackup-test"
        assert driver.settings.connection_verify == str(arm.ca_path)
        assert driver.list_snapshots() == []
    finally:
        driver.close()


def test_the_check_at_start_lists_the_resource_groups_snapshots_once(arm: ArmServer) -> None:
    AzureDriver(fast_settings(arm)).close()
    assert [r.method for r in arm.requests] == ["GET"]
    assert arm.requests[0].path.endswith(
        "/resourceGroups/cloudbackup-test/providers/Microsoft.Compute/snapshots"
    )
