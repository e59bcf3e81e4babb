"""The console's routes: sign-in, sign-out, the execution history, one execution with its
message's timeline, and Resend; the companies, a company's page with its webhooks (switch
on/off, rotate the secret, delete) and its last executions.

Each page calls the API's own route functions (relay/api/executions.py, messages.py) with
the signed-in user's principal, so a page shows exactly what the API answers that user, and
a refusal (a viewer's resend, another company's row) is the API's refusal.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import jinja2
import orjson
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from relay.accounts.authenticator import Authenticator
from relay.api.accounts import (
    add_user,
    create_token,
    edit_user,
    list_tokens,
    list_users,
    revoke_token,
)
from relay.api.companies import get_company, list_companies
from relay.api.dead_letters import list_dead_letters, purge_dead_letters, retry_dead_letters
from relay.api.event_types import list_event_types
from relay.api.executions import search_log, show_execution
from relay.api.messages import resend_message, show_message
from relay.api.routing import Answer, Call, SpoolAccess
from relay.api.stats import read_stats
from relay.api.webhooks import (
    create_webhook,
    delete_webhook,
    edit_webhook,
    get_webhook,
    list_webhooks,
    rotate_secret,
)
from relay.console.chart import HEIGHT, hourly_bars
from relay.console.sessions import COOKIE, Session, SessionStore
from relay.console.webhook_form import OPERATORS, WebhookForm
from relay.errors import InputError
from relay.execution_log.search import STATUSES
from relay.ops.health import DrainHealth
from relay.registry.listing import COMPANY_STATUSES, labels
from spool import QueueStats, utc_now

HERE = Path(__file__).parent
PREFIX = "/console"
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class ConsoleContext:
    engine: Engine
    spool: SpoolAccess
    authenticator: Authenticator
    sessions: SessionStore
    drain: Callable[[], DrainHealth]  # the drain's state, from the metrics (relay/ops/health.py)
    secure_cookie: bool = True


def console_routes(context: ConsoleContext) -> list[Route]:
    pages = _Pages(context)
    return [
        Route(PREFIX, pages.home, methods=["GET"]),
        Route(PREFIX + "/login", pages.login_form, methods=["GET"]),
        Route(PREFIX + "/login", pages.login, methods=["POST"]),
        Route(PREFIX + "/logout", pages.logout, methods=["POST"]),
        Route(PREFIX + "/executions", pages.executions, methods=["GET"]),
        Route(PREFIX + "/companies", pages.companies, methods=["GET"]),
        Route(PREFIX + "/companies/{company_id}", pages.company, methods=["GET"]),
        Route(
            PREFIX + "/companies/{company_id}/webhooks/new",
            pages.webhook_editor,
            methods=["GET", "POST"],
        ),
        Route(
            PREFIX + "/webhooks/{webhook_id}/edit", pages.webhook_editor, methods=["GET", "POST"]
        ),
        Route(PREFIX + "/webhooks/{webhook_id}/{change}", pages.change_webhook, methods=["POST"]),
        Route(PREFIX + "/accounts", pages.accounts, methods=["GET"]),
        Route(PREFIX + "/users", pages.change_account, methods=["POST"]),
        Route(PREFIX + "/users/{user_name}/{change}", pages.change_account, methods=["POST"]),
        Route(PREFIX + "/tokens", pages.change_account, methods=["POST"]),
        Route(PREFIX + "/tokens/{token_id}/revoke", pages.change_account, methods=["POST"]),
        Route(PREFIX + "/dead-letters", pages.dead_letters, methods=["GET"]),
        Route(PREFIX + "/dead-letters/{change}", pages.change_dead_letters, methods=["POST"]),
        Route(PREFIX + "/executions/{execution_id}", pages.execution, methods=["GET"]),
        Route(PREFIX + "/messages/{message_id}/resend", pages.resend, methods=["POST"]),
        Route(PREFIX + "/static/{name}", static_asset, methods=["GET"]),
    ]


ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}
LAST_EXECUTIONS = 10  # on a company's page
# A company page's webhook forms: the API route each calls, and the body it sends.
WEBHOOK_CHANGES: dict[str, tuple[Callable[[Call], Answer], dict[str, object]]] = {
    "enable": (edit_webhook, {"enabled": True}),
    "disable": (edit_webhook, {"enabled": False}),
    "rotate-secret": (rotate_secret, {}),
    "delete": (delete_webhook, {}),
}


async def static_asset(request: Request) -> Response:
    """The console's own stylesheet and script (vendored: nothing is loaded from a CDN)."""
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", 404)
    return FileResponse(HERE / "static" / name, media_type=ASSETS[name])


def render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**values), status)


class _Pages:
    def __init__(self, context: ConsoleContext) -> None:
        self.context = context

    async def _session(self, request: Request) -> Session | None:
        """The request's live session, with its user's principal as it is now (a user
        disabled since signing in is signed out; a changed role applies at once)."""
        session_id = request.cookies.get(COOKIE)
        session = self.context.sessions.get(session_id)
        if session is None:
            return None
        signed_in_as = session.principal
        now = await self.context.authenticator.user_principal(signed_in_as.user, signed_in_as)
        if now is None:
            self.context.sessions.close(session_id)
            return None
        return session if now == signed_in_as else dataclasses.replace(session, principal=now)

    async def home(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        now = utc_now()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        windows = [("Today (UTC)", midnight), ("Last 7 days", now - timedelta(days=7))]
        periods, error = [], None
        for label, since in windows:
            counted, error = await self._api(
                session, read_stats, query={"since": since.isoformat()}
            )
            if error is not None:
                break
            periods.append((label, _period(counted)))
        day_ago = now - timedelta(hours=23)
        hourly, _ = await self._api(session, read_stats, query={"since": day_ago.isoformat()})
        bars = hourly_bars(hourly["buckets"] if hourly else [], day_ago, 24)
        spool, drain = None, None
        if session.principal.every_company:  # the spool and drain hold every company's rows
            spool = _spool_state(
                await anyio.to_thread.run_sync(self.context.spool.outbox.stats), now
            )
            drain = await anyio.to_thread.run_sync(self.context.drain)
        return render(
            "dashboard.html",
            200 if error is None else error.status,
            spool=spool,
            drain=drain,
            session=session,
            periods=periods,
            error=error,
            bars=bars,
            chart_height=HEIGHT,
        )

    async def login_form(self, request: Request) -> Response:
        return render("login.html", error=None, username="")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        client = request.client.host if request.client else "unknown"
        try:
            principal = await anyio.to_thread.run_sync(
                self.context.authenticator.login, username, password, client
            )
        except InputError as exc:
            return render("login.html", exc.status, error=exc.message, username=username)
        session_id, _ = self.context.sessions.open(principal)
        answer = RedirectResponse(PREFIX + "/executions", 303)
        answer.set_cookie(
            COOKIE,
            session_id,
            max_age=int(self.context.sessions.lifetime.total_seconds()),
            path=PREFIX,
            secure=self.context.secure_cookie,
            httponly=True,
            samesite="lax",
        )
        return answer

    async def logout(self, request: Request) -> Response:
        refused = await self._refused_form(request)
        if refused is not None:
            return refused
        self.context.sessions.close(request.cookies.get(COOKIE))
        answer = RedirectResponse(PREFIX + "/login", 303)
        answer.delete_cookie(COOKIE, path=PREFIX)
        return answer

    async def executions(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        query = {k: v for k, v in request.query_params.items() if v}
        search = query.pop("q", "").strip()
        if search:  # one box: digits are a phone number, anything else a message id
            query["phone" if _looks_like_phone(search) else "message_id"] = search
        else:  # a shared link names the filter itself (`?phone=...`): show it in the box
            search = query.get("phone") or query.get("message_id") or ""
        for name in ("since", "until"):
            if name in query:
                query[name] = _utc_unless_zoned(query[name])
        page, error = await self._api(session, search_log, query=query)
        companies, _ = await self._api(session, list_companies, query={"limit": "500"})
        catalog, _ = await self._api(session, list_event_types, query={"limit": "500"})
        webhooks = None
        if "company_id" in query and error is None:
            webhooks, _ = await self._api(
                session,
                list_webhooks,
                path={"company_id": query["company_id"]},
                query={"limit": "500"},
            )
        return render(
            "executions.html",
            200 if error is None else error.status,
            session=session,
            page=page,
            labels=await self._labels(page["items"] if page else []),
            error=error,
            filters=query,
            next_query=_next_query(request.query_params, page),
            statuses=STATUSES,
            search=search,
            companies=companies["items"] if companies else [],
            event_types=[e["name"] for e in catalog["items"]] if catalog else [],
            webhooks=webhooks["items"] if webhooks else [],
        )

    async def _labels(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        """Company names and webhook URLs, by id as the rows carry it, for rows the API
        already let this user see."""
        company_ids = {uuid.UUID(r["company_id"]) for r in rows if r.get("company_id")}
        webhook_ids = {uuid.UUID(r["webhook_id"]) for r in rows if r.get("webhook_id")}
        found = await anyio.to_thread.run_sync(
            labels, self.context.engine, company_ids, webhook_ids
        )
        return {
            "company_names": {str(k): v for k, v in found.company_names.items()},
            "webhook_urls": {str(k): v for k, v in found.webhook_urls.items()},
        }

    async def companies(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        query = {k: v for k, v in request.query_params.items() if v}
        return await self._list_page(
            request, session, list_companies, "companies.html", query, statuses=COMPANY_STATUSES
        )

    async def company(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        return await self._company_page(session, request.path_params["company_id"])

    async def _company_page(
        self, session: Session, company_id: str, new_secret: Mapping[str, str] | None = None
    ) -> Response:
        """A company, its webhooks (all of them: a company has a handful) and its last
        executions (the log's indexed company search)."""
        path = {"company_id": company_id}
        company, error = await self._api(session, get_company, path=path)
        webhooks, executions = None, None
        if error is None:
            webhooks, error = await self._api(
                session, list_webhooks, path=path, query={"limit": "500"}
            )
        if error is None:
            query = {"company_id": company_id, "limit": str(LAST_EXECUTIONS)}
            executions, error = await self._api(session, search_log, query=query)
        return render(
            "company.html",
            200 if error is None else error.status,
            session=session,
            company=company if error is None else None,
            webhooks=webhooks["items"] if webhooks else [],
            executions=executions["items"] if executions else [],
            labels=await self._labels(executions["items"] if executions else []),
            error=error,
            new_secret=new_secret,
        )

    async def change_webhook(self, request: Request) -> Response:
        """Switch a webhook on or off, rotate its secret (shown once, on the page this
        answers with, never stored for later), or delete it; then its company's page."""
        refused = await self._refused_form(request)
        if refused is not None:
            return refused
        session = await self._session(request)
        assert session is not None
        change = WEBHOOK_CHANGES.get(request.path_params["change"])
        if change is None:
            return render("refused.html", 404, session=session, reason="no such change")
        if not session.principal.can_write():
            return render(
                "refused.html", 403, session=session, reason="viewers cannot change webhooks"
            )
        path = {"webhook_id": request.path_params["webhook_id"]}
        webhook, error = await self._api(session, get_webhook, path=path)
        if error is None:
            handler, body = change
            changed, error = await self._api(session, handler, path=path, body=body)
        if error is not None:
            return render("refused.html", error.status, session=session, reason=error.message)
        company_id = webhook["company_id"]
        if "secret" in changed:
            shown = {"webhook_id": webhook["id"], "secret": changed["secret"]}
            return await self._company_page(session, company_id, new_secret=shown)
        return RedirectResponse(f"{PREFIX}/companies/{company_id}", 303)

    async def accounts(
        self,
        request: Request,
        new_token: Mapping[str, object] | None = None,
        error: InputError | None = None,
    ) -> Response:
        """Users and API tokens: for admins of every company, as the API allows."""
        session = await self._session(request)
        if session is None:
            return _to_login()
        if not (session.principal.can_write() and session.principal.every_company):
            return render(
                "refused.html", 403, session=session, reason="only admins of every company"
            )
        users, _ = await self._api(session, list_users)
        tokens, _ = await self._api(session, list_tokens)
        companies, _ = await self._api(session, list_companies, query={"limit": "500"})
        return render(
            "accounts.html",
            200 if error is None else error.status,
            session=session,
            users=users["items"] if users else [],
            tokens=tokens["items"] if tokens else [],
            companies=companies["items"] if companies else [],
            company_names={c["id"]: c["name"] for c in companies["items"]} if companies else {},
            roles=("viewer", "admin"),
            scopes=("read", "events", "admin"),
            new_token=new_token,
            error=error,
        )

    async def change_account(self, request: Request) -> Response:
        """Add a user, change one (role, companies, password, disable, enable), create or
        revoke a token; then the
        accounts page (a new token's text on it, once)."""
        refused = await self._refused_form(request)
        if refused is not None:
            return refused
        session = await self._session(request)
        assert session is not None
        if not (session.principal.can_write() and session.principal.every_company):
            return render(
                "refused.html", 403, session=session, reason="only admins of every company"
            )
        form = await request.form()
        fields = {k: str(v) for k, v in form.items() if k not in ("csrf", "companies")}
        fields = {k: v for k, v in fields.items() if v.strip()}
        # the companies a user may see: the ones picked, or (none picked) every company
        companies = [str(c) for c in form.getlist("companies") if str(c).strip()] or None
        path = dict(request.path_params)
        change = path.pop("change", None)
        route = request.url.path.removeprefix(PREFIX)
        handler: Callable[[Call], Answer]
        body: dict[str, object]
        if route == "/users":
            handler, body = add_user, {**fields, "companies": companies}
        elif route == "/tokens":
            handler, body = create_token, dict(fields)
        elif route.endswith("/revoke"):
            handler, body = revoke_token, {}
        else:
            edits: dict[str, dict[str, object]] = {
                "disable": {"disabled": True},
                "enable": {"disabled": False},
                "role": {"role": fields.get("role", "")},
                "companies": {"companies": companies},
                "password": {"password": fields.get("password", "")},
            }
            if change not in edits:
                return render("refused.html", 404, session=session, reason="no such change")
            handler, body = edit_user, edits[change]
        answer, error = await self._api(session, handler, path=path, body=body)
        if error is not None:
            return await self.accounts(request, error=error)
        if handler is create_token:
            return await self.accounts(request, new_token=answer)
        return RedirectResponse(PREFIX + "/accounts", 303)

    async def dead_letters(self, request: Request, done: str | None = None) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        page, error = await self._api(session, list_dead_letters)
        return render(
            "dead_letters.html",
            200 if error is None else error.status,
            session=session,
            page=page,
            error=error,
            done=done,
        )

    async def change_dead_letters(self, request: Request) -> Response:
        """Retry or purge one dead letter (`ids`) or all of them (`all`), as the API does."""
        refused = await self._refused_form(request)
        if refused is not None:
            return refused
        session = await self._session(request)
        assert session is not None
        change = {"retry": retry_dead_letters, "purge": purge_dead_letters}.get(
            request.path_params["change"]
        )
        if change is None:
            return render("refused.html", 404, session=session, reason="no such change")
        if not session.principal.can_write():
            return render(
                "refused.html", 403, session=session, reason="viewers cannot change dead letters"
            )
        form = await request.form()
        body: dict[str, object] = {"all": True} if form.get("all") == "true" else {}
        if not body:
            body["ids"] = [str(one) for one in form.getlist("ids")]
        answer, error = await self._api(session, change, body=body)
        if error is not None:
            return render("refused.html", error.status, session=session, reason=error.message)
        done = (
            f"{answer['retried']} back in the queue"
            if "retried" in answer
            else f"{answer['purged']} purged"
        )
        return await self.dead_letters(request, done)

    async def webhook_editor(self, request: Request) -> Response:
        """New webhook (`/companies/{id}/webhooks/new`) or an edit (`/webhooks/{id}/edit`):
        GET shows the form; POST checks its filters against the samples, adds a filter row,
        or saves through the API's route (a refusal comes back on the form, as typed)."""
        session = await self._session(request)
        if session is None:
            return _to_login()
        if request.method == "POST":
            refused = await self._refused_form(request)
            if refused is not None:
                return refused
        if not session.principal.can_write():
            return render("refused.html", 403, session=session, reason="viewers cannot edit")
        webhook_id = request.path_params.get("webhook_id")
        company_id = str(request.path_params.get("company_id", ""))
        existing = None
        if webhook_id is not None:
            existing, error = await self._api(session, get_webhook, path={"webhook_id": webhook_id})
            if error is not None:
                return render("refused.html", error.status, session=session, reason=error.message)
            company_id = str(existing["company_id"])
        form = WebhookForm.from_webhook(existing) if existing else WebhookForm()
        action, error, verdicts = "", None, None
        if request.method == "POST":
            posted = await request.form()
            form = WebhookForm.from_form(posted)
            action = str(posted.get("action", "save"))
        if action == "save":
            if webhook_id is None:
                answer, error = await self._api(
                    session,
                    create_webhook,
                    path={"company_id": company_id},
                    body=form.body(creating=True),
                )
            else:
                answer, error = await self._api(
                    session,
                    edit_webhook,
                    path={"webhook_id": webhook_id},
                    body=form.body(creating=False),
                )
            if error is None:
                if answer.get("secret"):
                    shown = {"webhook_id": answer["id"], "secret": answer["secret"]}
                    return await self._company_page(session, company_id, new_secret=shown)
                return RedirectResponse(f"{PREFIX}/companies/{company_id}", 303)
        elif action == "check":
            verdicts = form.check()
        if action in ("", "add-row") or not form.rows:
            form.with_blank_row()
        catalog, _ = await self._api(session, list_event_types, query={"limit": "500"})
        return render(
            "webhook_form.html",
            200 if error is None else error.status,
            session=session,
            creating=webhook_id is None,
            action=str(request.url.path),
            company_id=company_id,
            form=form,
            catalog=catalog["items"] if catalog else [],
            operators=OPERATORS,
            paths=form.paths(),
            verdicts=verdicts,
            error=error,
        )

    async def _list_page(
        self,
        request: Request,
        session: Session,
        handler: Callable[[Call], Answer],
        template: str,
        query: Mapping[str, str],
        **values: Any,
    ) -> Response:
        """A page of an API list route's answer, with a link to the next page."""
        page, error = await self._api(session, handler, query=query)
        return render(
            template,
            200 if error is None else error.status,
            session=session,
            page=page,
            error=error,
            filters=query,
            next_query=_next_query(request.query_params, page),
            **values,
        )

    async def execution(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _to_login()
        path = {"execution_id": request.path_params["execution_id"]}
        detail, error = await self._api(session, show_execution, path=path)
        timeline = None
        if detail is not None and detail.get("message_id"):
            timeline, _ = await self._api(
                session, show_message, path={"message_id": detail["message_id"]}
            )
        return render(
            "execution.html",
            200 if error is None else error.status,
            session=session,
            detail=detail,
            error=error,
            timeline=timeline,
            body=_pretty(detail.get("request_payload")) if detail else "",
        )

    async def resend(self, request: Request) -> Response:
        refused = await self._refused_form(request)
        if refused is not None:
            return refused
        session = await self._session(request)
        assert session is not None
        form = await request.form()
        back = str(form.get("back", PREFIX + "/executions"))
        if not back.startswith(PREFIX + "/"):
            back = PREFIX + "/executions"
        if not session.principal.can_write():
            return render("refused.html", 403, session=session, reason="viewers cannot resend")
        _, error = await self._api(session, resend_message, path=dict(request.path_params), body={})
        if error is not None:
            return render("refused.html", error.status, session=session, reason=error.message)
        return RedirectResponse(back + "?resent=1", 303)

    async def _refused_form(self, request: Request) -> Response | None:
        """403 for a form without its session's CSRF token (or without a session)."""
        session = await self._session(request)
        form = await request.form()
        sent = form.get("csrf")
        if session is None or not session.csrf_matches(sent if isinstance(sent, str) else None):
            return render("refused.html", 403, session=None, reason="missing or wrong CSRF token")
        return None

    async def _api(
        self,
        session: Session,
        handler: Callable[[Call], Answer],
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> tuple[Any, InputError | None]:
        """An API route function's answer for this user, in a worker thread as the API runs
        it; (None, error) for what the API would refuse with a 4xx."""
        call = Call(
            session.principal,
            self.context.engine,
            self.context.spool,
            path or {},
            query or {},
            body or {},
        )
        try:
            answer = await anyio.to_thread.run_sync(functools.partial(handler, call))
        except InputError as exc:
            return None, exc
        return orjson.loads(orjson.dumps(answer.content)), None


def _period(counted: Mapping[str, Any]) -> dict[str, Any]:
    """A window's totals over its companies, and the success rate a person reads first."""
    companies = counted["companies"]
    total = sum(c["total"] for c in companies)
    successes = sum(c["successes"] for c in companies)
    rate = f"{100 * successes / total:.1f}%" if total else "—"
    failures = sum(c["failures"] for c in companies)
    return {
        "total": total,
        "successes": successes,
        "failures": failures,
        "rate": rate,
        "companies": companies,
    }


def _spool_state(stats: QueueStats, now: datetime) -> dict[str, object]:
    """The log rows not drained yet, as `relay spool status` reports them."""
    oldest = min((b.oldest_enqueued_at for b in stats.backlogs), default=None)
    age = None if oldest is None else f"{(now - oldest).total_seconds():.1f} s"
    return {"pending": stats.pending, "oldest": age, "dead_letters": stats.dead_letters}


def _to_login() -> Response:
    return RedirectResponse(PREFIX + "/login", 303)


def _looks_like_phone(text: str) -> bool:
    return any(c.isdigit() for c in text) and all(c.isdigit() or c in "+-() ." for c in text)


def _utc_unless_zoned(moment: str) -> str:
    """A time range's end as typed without a zone (a `datetime-local` field when the page's
    script did not run) is read as UTC, which the page says; the API wants an offset."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment  # the API names the field
    return moment if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC).isoformat()


def _pretty(payload: object) -> str:
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()


def _next_query(params: Mapping[str, str], page: Any) -> str | None:
    cursor = page.get("next_cursor") if isinstance(page, dict) else None
    if not cursor:
        return None
    kept = {k: v for k, v in params.items() if k != "cursor"}
    return urlencode({**kept, "cursor": cursor})
