"""Staff login: lockout after repeated failures (django-axes, admin login only) and the optional TOTP
second factor (django-otp), docs/control-room.md "Login"."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django_otp import user_has_device
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice


class AdminLockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check, for logins that come with a request (the admin login form).

    `authenticate()` without a request (the test client's `login`, management commands) has no
    username+IP to key on; axes would refuse it, so it is left to the model backend. The API does
    not use Django logins at all (JWT, docs/auth.md).
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class StaffLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """Username + password, and the TOTP code when the user has a confirmed device (optional per user)."""

    otp_device = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        help_text="Only if you enabled two-factor login",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    otp_challenge = forms.CharField(required=False, widget=forms.HiddenInput)

    def _chosen_device(self, user: Any) -> Any:
        """The device named by the form, else the user's (first) confirmed authenticator app."""
        return (
            super()._chosen_device(user) or TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
        )

    def clean(self) -> dict[str, Any]:
        self.cleaned_data = super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user):
            self.clean_otp(user)
        return self.cleaned_data
