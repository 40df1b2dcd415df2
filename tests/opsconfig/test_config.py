import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from halobestie.valkey import get_valkey
from opsconfig.models import AppConfig
from opsconfig.services import VALKEY_KEY, config_get, config_invalidate_local, config_update


@pytest.mark.django_db
def test_defaults_match_the_design():
    cfg = config_get()
    assert cfg.mitra_stale_after_seconds == 45
    assert cfg.max_customers_per_mitra == 1
    assert cfg.pairing_blast_timeout_seconds == 60
    assert cfg.returning_chat_confirmation_timeout_seconds == 20
    assert cfg.extension_timeout_seconds == 10
    assert cfg.extension_default_action_on_timeout == "auto_approve"
    assert cfg.closing_grace_seconds == 300
    assert cfg.payment_request_timeout_minutes == 20
    assert cfg.early_end_mitra_enabled is False
    assert cfg.early_end_customer_enabled is True


@pytest.mark.django_db
def test_cached_read_needs_no_sql(django_assert_num_queries):
    config_get()
    config_invalidate_local()  # another process: only the Valkey copy is shared
    with django_assert_num_queries(0):
        assert config_get().max_customers_per_mitra == 1


@pytest.mark.django_db(transaction=True)
def test_update_is_seen_after_commit_across_processes():
    config_get()
    with transaction.atomic():
        config_update(max_customers_per_mitra=3)
    config_invalidate_local()
    assert config_get().max_customers_per_mitra == 3
    assert '"max_customers_per_mitra": 3' in str(get_valkey().get(VALKEY_KEY))


@pytest.mark.django_db
def test_stale_after_below_heartbeat_cadence_is_rejected_and_not_saved(settings):
    settings.MITRA_HEARTBEAT_CADENCE_SECONDS = 30
    with pytest.raises(ValidationError) as exc:
        config_update(mitra_stale_after_seconds=20)
    assert "mitra_stale_after_seconds" in exc.value.message_dict
    assert AppConfig.objects.get(pk=1).mitra_stale_after_seconds == 45


@pytest.mark.django_db
def test_config_reads_fall_back_to_postgres_when_valkey_is_down(valkey_server):
    config_update(max_customers_per_mitra=2)
    valkey_server.stop()
    config_invalidate_local()
    assert config_get().max_customers_per_mitra == 2
