"""The control room's pages inside the admin (mounted by ControlRoomSite.get_urls).

Thin: parse, check the permission, call one selector or one controlroom service, render.
"""

from __future__ import annotations

import csv
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from controlroom import charts, selectors, services
from controlroom.forms import ActivityForm, RerouteForm, TopicForm, TwoFactorConfirmForm
from halobestie.exceptions import ApplicationError
from mitras.models import Mitra
from sessions_app.models import ChatSession

PERM_DASHBOARD = "controlroom.view_dashboard"
PERM_OPERATE = "controlroom.operate_live_sessions"
PERM_ACTIVITY = "controlroom.view_mitra_activity"
PERM_VIEW_SESSIONS = "sessions_app.view_chatsession"
# The all-mitras CSV runs a few queries per mitra; above this many it belongs to the command.
WEB_CSV_MAX_MITRAS = 2000


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


# Apps whose admin pages are ops case queues (care: feedback, reports, blocks, crisis), linked from the
# dashboard when they are installed and the user may view them.
CASE_APPS = ("care",)


def case_links(site: AdminSite, request: HttpRequest) -> list[tuple[str, str]]:
    links = []
    for model in site._registry:
        meta = model._meta
        if meta.app_label in CASE_APPS and request.user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
            links.append(
                (
                    str(meta.verbose_name_plural).capitalize(),
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
                )
            )
    return sorted(links)


def dashboard_context(site: AdminSite, request: HttpRequest) -> dict[str, Any]:
    if not request.user.has_perm(PERM_DASHBOARD):
        return {"dashboard": None}
    return {
        "case_links": case_links(site, request),
        "dashboard": selectors.dashboard_get(),
        "charts": charts.dashboard_charts(selectors.hourly_stats_list()),
        "dashboard_json_url": reverse("admin:controlroom_dashboard_json"),
        "refresh_ms": int(settings.CONTROLROOM_DASHBOARD_REFRESH_MS),
        "refresh_seconds": f"{int(settings.CONTROLROOM_DASHBOARD_REFRESH_MS) / 1000:g}",
        "can_see_live": request.user.has_perm(PERM_VIEW_SESSIONS),
        "can_see_activity": request.user.has_perm(PERM_ACTIVITY),
        "can_see_refunds": request.user.has_perm("payments.view_refundcase"),
    }


def dashboard_json(request: HttpRequest) -> JsonResponse:
    """The live counts (polled by dashboard.js every few seconds) and the re-rendered charts."""
    _require(request, PERM_DASHBOARD)
    data = selectors.dashboard_get().as_json()
    if request.GET.get("charts"):
        data["charts"] = "".join(charts.dashboard_charts(selectors.hourly_stats_list()))
    return JsonResponse(data)


def _context(site: AdminSite, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**site.each_context(request), "title": title, **extra}


def live_sessions(site: AdminSite, request: HttpRequest) -> TemplateResponse:
    _require(request, PERM_VIEW_SESSIONS)
    return TemplateResponse(
        request,
        "controlroom/live_sessions.html",
        _context(
            site,
            request,
            "Live sessions",
            rows=selectors.live_session_list(),
            can_operate=request.user.has_perm(PERM_OPERATE),
        ),
    )


def _fail(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    messages.error(request, exc.message)
    return redirect("admin:controlroom_live")


def session_reroute(site: AdminSite, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    """Step 1: choose among available mitras; step 2: confirm; then the pairing service moves it."""
    _require(request, PERM_OPERATE)
    session = get_object_or_404(ChatSession.objects.select_related("mitra"), pk=session_id)
    form = RerouteForm(request.POST or None, candidates=selectors.reroute_candidate_list(session=session))
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["to_mitra"]
        if request.POST.get("confirm") == "yes":
            try:
                services.ops_session_reroute(actor=request.user, session_id=session.pk, to_mitra_id=target.pk)
            except ApplicationError as exc:
                return _fail(request, exc)
            messages.success(request, f"Session {session.pk} rerouted to {target.display_name}.")
            return redirect("admin:controlroom_live")
        return TemplateResponse(
            request,
            "controlroom/confirm.html",
            _context(
                site,
                request,
                "Confirm reroute",
                session=session,
                question=(
                    f"Reroute session {session.pk} from "
                    f"{session.mitra.display_name if session.mitra else 'nobody'} to {target.display_name}?"
                ),
                hidden={"to_mitra": str(target.pk)},
                button="Yes, reroute",
            ),
        )
    return TemplateResponse(
        request,
        "controlroom/reroute.html",
        _context(site, request, "Reroute session", session=session, form=form),
    )


def session_end(site: AdminSite, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    _require(request, PERM_OPERATE)
    session = get_object_or_404(ChatSession.objects.select_related("mitra"), pk=session_id)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            services.ops_session_end(actor=request.user, session_id=session.pk)
        except ApplicationError as exc:
            return _fail(request, exc)
        messages.success(request, f"Session {session.pk} is closing (ended by ops); goodbyes stay open.")
        return redirect("admin:controlroom_live")
    return TemplateResponse(
        request,
        "controlroom/confirm.html",
        _context(
            site,
            request,
            "Confirm end",
            session=session,
            question=f"End session {session.pk} now? Both sides get the goodbye grace.",
            hidden={},
            button="Yes, end the session",
        ),
    )


def session_topic(site: AdminSite, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    _require(request, PERM_OPERATE)
    session = get_object_or_404(ChatSession, pk=session_id)
    form = TopicForm(request.POST or None, initial={"topic_sensitivity": session.topic_sensitivity})
    if request.method == "POST" and form.is_valid():
        try:
            services.ops_session_topic_set(
                actor=request.user,
                session_id=session.pk,
                topic_sensitivity=form.cleaned_data["topic_sensitivity"],
            )
        except ApplicationError as exc:
            return _fail(request, exc)
        messages.success(request, f"Session {session.pk}: topic flag saved.")
        return redirect("admin:controlroom_live")
    return TemplateResponse(
        request, "controlroom/topic.html", _context(site, request, "Topic flag", session=session, form=form)
    )


def mitra_activity(site: AdminSite, request: HttpRequest) -> HttpResponse:
    _require(request, PERM_ACTIVITY)
    form = ActivityForm(request.GET or None)
    start, end = form.period()
    mitra = form.cleaned_data.get("mitra") if form.is_valid() else None
    if request.GET.get("format") == "csv":
        if mitra is None and Mitra.objects.count() > WEB_CSV_MAX_MITRAS:
            messages.error(
                request,
                f"More than {WEB_CSV_MAX_MITRAS:,} mitras: choose one, or export all with "
                "`manage.py report_export activity` (it runs outside the web request).",
            )
            return redirect("admin:controlroom_activity")
        return _activity_csv(mitra, start, end)
    activity = timeline = None
    if mitra is not None:
        activity = selectors.mitra_activity_get(mitra=mitra, start=start, end=end)
        timeline = selectors.mitra_timeline_list(mitra=mitra, start=start, end=end)
    return TemplateResponse(
        request,
        "controlroom/activity.html",
        _context(
            site,
            request,
            "Mitra activity",
            form=form,
            start=start,
            end=end,
            activity=activity,
            timeline=timeline,
            csv_query=request.GET.urlencode(),
        ),
    )


def _activity_csv(mitra: Mitra | None, start: Any, end: Any) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="mitra-activity-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    writer = csv.writer(response)
    writer.writerow(selectors.ACTIVITY_CSV_HEADER)
    mitras = [mitra] if mitra is not None else Mitra.objects.order_by("display_name").iterator()
    for m in mitras:
        writer.writerow(selectors.mitra_activity_get(mitra=m, start=start, end=end).csv_row())
    return response


def two_factor(site: AdminSite, request: HttpRequest) -> HttpResponse:
    """Turn on the optional TOTP second factor for oneself: a key to scan, then a code to confirm it.

    Until a code confirms the device, nothing changes for the login. Turning it off again is an
    admin's job (delete the TOTP device), so a stolen session cannot quietly remove the factor.
    """
    user = request.user
    if services.two_factor_enabled(user=user):
        return TemplateResponse(
            request, "controlroom/two_factor.html", _context(site, request, "Two-factor login", enabled=True)
        )
    device = services.two_factor_pending_device(user=user)
    form = TwoFactorConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.two_factor_confirm(user=user, device=device, token=form.cleaned_data["token"]):
            messages.success(
                request, "Two-factor login is on: the login now asks for your authenticator code."
            )
            return redirect("admin:index")
        form.add_error("token", "That code does not match; check the time on your phone and try again.")
    return TemplateResponse(
        request,
        "controlroom/two_factor.html",
        _context(
            site,
            request,
            "Two-factor login",
            enabled=False,
            form=form,
            config_url=device.config_url,
            key=device.key,
        ),
    )
