"""Settings of the approval service from the environment, as documented in docs/approval.md."""

from __future__ import annotations

import pytest

from approval.settings import ApprovalSettings


def test_credentials_keys_and_bootstrap_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_CREDENTIALS__KEYS", '["key-new", "key-old"]')
    monkeypatch.setenv("APPROVAL_BOOTSTRAP_TOKEN", "boot")
    settings = ApprovalSettings()
    assert [k.get_secret_value() for k in settings.credentials.keys] == ["key-new", "key-old"]
    assert settings.credentials.database == "socialpub_credentials"
    assert settings.bootstrap_token is not None
    assert settings.bootstrap_token.get_secret_value() == "boot"
    assert "key-new" not in repr(settings)
