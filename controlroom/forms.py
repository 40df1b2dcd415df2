from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from mitras.models import Mitra
from sessions_app.models import TopicSensitivity


class RerouteForm(forms.Form):
    to_mitra = forms.ModelChoiceField(
        queryset=Mitra.objects.none(), label="Reroute to", empty_label="— choose an available mitra —"
    )

    def __init__(self, *args: Any, candidates: list[Mitra], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to_mitra"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Mitra.objects.filter(pk__in=[m.pk for m in candidates]).order_by("display_name")


class TopicForm(forms.Form):
    topic_sensitivity = forms.ChoiceField(choices=TopicSensitivity.choices, label="Topic flag")


class ActivityForm(forms.Form):
    mitra = forms.ModelChoiceField(queryset=Mitra.objects.order_by("display_name"), required=False)
    start = forms.DateField(required=False, help_text="first day (UTC), default 7 days ago")
    end = forms.DateField(required=False, help_text="last day (UTC), inclusive, default today")

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        today = timezone.now().date()
        data = self.cleaned_data if self.is_valid() else {}
        start_day = data.get("start") or today - dt.timedelta(days=6)
        end_day = data.get("end") or today
        start = dt.datetime.combine(start_day, dt.time.min, tzinfo=dt.UTC)
        end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        return start, end

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The first day must not be after the last day.")
        return data


class TwoFactorConfirmForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$", label="Code from your authenticator app", error_messages={"invalid": "Six digits."}
    )
