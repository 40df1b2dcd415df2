"""mitras owns deactivate/reactivate; accounts and availability act through the listeners they
register (mitras.lifecycle), inside the same transaction."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuthSession
from availability import services as availability_services
from mitras import lifecycle
from mitras.lifecycle import LifecycleListener, lifecycle_listener_register
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus, OnlineReason
from mitras.services import mitra_deactivate, mitra_reactivate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def online_mitra(make_mitra: Any, login: Any) -> Mitra:
    mitra = make_mitra()
    login(mitra)
    login(mitra)
    availability_services.mitra_set_online(mitra_id=mitra.id)
    return mitra


def test_the_owning_apps_are_registered() -> None:
    assert {"accounts", "availability"} <= set(lifecycle._listeners)


def test_deactivate_runs_every_listener_once_and_is_idempotent(online_mitra: Mitra) -> None:
    mitra_deactivate(mitra_id=online_mitra.id)
    mitra_deactivate(mitra_id=online_mitra.id)
    online_mitra.refresh_from_db()
    assert online_mitra.is_active is False
    assert not AuthSession.objects.filter(mitra=online_mitra).exists()  # accounts' listener
    assert MitraOnlineStatus.objects.get(mitra=online_mitra).is_online is False  # availability's
    reasons = list(
        MitraOnlineLog.objects.filter(mitra=online_mitra, event="offline").values_list("reason", flat=True)
    )
    assert reasons == [OnlineReason.DEACTIVATED]
    mitra_reactivate(mitra_id=online_mitra.id)
    online_mitra.refresh_from_db()
    assert online_mitra.is_active is True
    assert MitraOnlineStatus.objects.get(mitra=online_mitra).is_online is False  # goes online by itself


def test_a_failing_listener_undoes_the_whole_deactivation(online_mitra: Mitra, monkeypatch: Any) -> None:
    monkeypatch.setattr(lifecycle, "_listeners", dict(lifecycle._listeners))

    def refuse(**_kwargs: Any) -> None:
        raise RuntimeError("listener failed")

    lifecycle_listener_register(LifecycleListener(name="refusing", on_deactivate=refuse))
    with pytest.raises(RuntimeError):
        mitra_deactivate(mitra_id=online_mitra.id)
    online_mitra.refresh_from_db()
    assert online_mitra.is_active is True
    assert AuthSession.objects.filter(mitra=online_mitra).count() == 2
    assert MitraOnlineStatus.objects.get(mitra=online_mitra).is_online is True
