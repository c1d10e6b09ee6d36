"""Who may do what: every URL of the portal against every role, as data an auditor can read.

`test_authorization_matrix.py` runs each row for each role and fails when the portal
answers otherwise, or when a URL exists that no row lists.

Objects in paths are the standing world of that test (tests/portal/conftest.py), and
`{app_model}` the first object of a model: `{case}` is an open case that
`agent` opened for `subject` (with a TOTP challenge `{challenge}` and a push `{push}`
waiting for the subject), `{verified_case}` one verified and ready to act on,
`{pending_request}` the manager's request for their report waiting for approval,
`{grant}` an active grant the manager asked for. `{totp}` in a body is the caller's
own authenticator code. The employee is someone else: none of these objects is theirs.
"""

from typing import NamedTuple

ROLES = ("anonymous", "employee", "agent", "manager", "approver", "auditor", "security_admin")

LOGIN = "login"  # redirected to the admin's login page
ME_LOGIN = "me-login"  # redirected to the self-service login page
OK = "ok"  # allowed: 200 for a GET; 200 (form errors) or a redirect, not to a login, for a POST


class Row(NamedTuple):
    method: str
    path: str
    body: dict[str, str]
    expected: tuple[int | str, ...]  # one per ROLES, in that order


def row(method: str, path: str, *expected: int | str, body: dict[str, str] | None = None) -> Row:
    assert len(expected) == len(ROLES), path
    return Row(method, path, body or {}, expected)


OPEN_CASE = {"subject": "{subject}", "action": "account_unlock", "channel": "walk_in", "ticket": "INC-7"}
REQUEST = {
    "beneficiary": "{subject}",
    "entitlement": "{entitlement}",
    "justification": "incident",
    "duration_minutes": "30",
}
DECISION = {"comment": "ok", "step_up_code": "{totp}"}

# REST API (CONTRACT): 401 no credentials, 403 not allowed, 404 not yours.
#         method  path                                             anon emp agent mgr appr aud  sec
API = [
    row("GET", "/api/v1/me/",                                       401, 200, 200, 200, 200, 200, 200),
    row("GET", "/api/v1/me/challenges/",                            401, 200, 200, 200, 200, 200, 200),
    row("POST", "/api/v1/me/challenges/{push}/",                    401, 404, 404, 404, 404, 404, 404,
        body={"decision": "deny"}),
    row("POST", "/api/v1/verifications/",                           401, 403, 201, 403, 403, 403, 403,
        body=OPEN_CASE),
    row("GET", "/api/v1/verifications/{case}/",                     401, 404, 200, 404, 404, 200, 200),
    row("POST", "/api/v1/verifications/{case}/challenges/",         401, 404, 201, 404, 404, 403, 403,
        body={"method": "sms_otp"}),
    row("POST", "/api/v1/challenges/{challenge}/answer/",           401, 404, 200, 404, 404, 403, 403,
        body={"code": "000000"}),
    row("POST", "/api/v1/verifications/{verified_case}/execute/",   401, 404, 200, 404, 404, 403, 403),
    row("POST", "/api/v1/verifications/{case}/escalate/",           401, 404, 200, 404, 404, 403, 403),
    row("POST", "/api/v1/verifications/{case}/cancel/",             401, 404, 200, 404, 404, 403, 403),
    row("GET", "/api/v1/entitlements/",                             401, 200, 200, 200, 200, 200, 200),
    row("POST", "/api/v1/access-requests/",                         401, 403, 403, 201, 403, 403, 403,
        body=REQUEST),
    row("GET", "/api/v1/access-requests/{pending_request}/",        401, 404, 404, 200, 200, 200, 200),
    row("POST", "/api/v1/access-requests/{pending_request}/approve/", 401, 404, 404, 403, 200, 403, 403,
        body=DECISION),
    row("POST", "/api/v1/access-requests/{pending_request}/deny/",  401, 404, 404, 403, 200, 403, 403,
        body=DECISION),
    row("POST", "/api/v1/access-requests/{pending_request}/cancel/", 401, 404, 404, 200, 403, 403, 403),
    row("GET", "/api/v1/grants/",                                   401, 200, 200, 200, 200, 200, 200),
    row("POST", "/api/v1/grants/{grant}/revoke/",                   401, 404, 404, 403, 200, 403, 200,
        body={"reason": "matrix"}),
    row("GET", "/api/v1/audit-events/",                             401, 403, 403, 403, 403, 200, 200),
    row("GET", "/api/v1/metrics/",                                  401, 403, 403, 403, 403, 200, 200),
    row("GET", "/api/v1/no-such-endpoint/",                         404, 404, 404, 404, 404, 404, 404),
    row("GET", "/api/schema/",                                      200, 200, 200, 200, 200, 200, 200),
    row("GET", "/api/docs/",                                        200, 200, 200, 200, 200, 200, 200),
]

# Pages outside the admin. Links in /verify/ are bearer tokens: the role does not matter.
PAGES = [
    row("GET", "/healthz",                                          200, 200, 200, 200, 200, 200, 200),
    row("GET", "/me/",                                 ME_LOGIN, 200, 200, 200, 200, 200, 200),
    row("GET", "/me/login/",                                        200, 200, 200, 200, 200, 200, 200),
    row("POST", "/me/challenges/{push}/",              ME_LOGIN, 404, 404, 404, 404, 404, 404,
        body={"decision": "deny"}),
    # Only the subject of a reset in its cooling-off stops it; to anyone else it does not exist.
    row("POST", "/me/resets/{case}/cancel/",           ME_LOGIN, 404, 404, 404, 404, 404, 404),
    row("GET", "/verify/reset/not-a-token/",                        410, 410, 410, 410, 410, 410, 410),
    row("GET", "/verify/enrol/not-a-token/",                        410, 410, 410, 410, 410, 410, 410),
    row("GET", "/verify/cancel/not-a-token/",                       410, 410, 410, 410, 410, 410, 410),
]

# Admin pages that are not one model's standard pages. The employee is not staff:
# even with a verified OTP session the admin sends them to its login.
ADMIN_PAGES = [
    row("GET", "/admin/",                                           LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/login/",                                     200, 200, 302, 302, 302, 302, 302),
    # Django sends a logged-out visitor of the logout page to the index (then the login).
    row("GET", "/admin/logout/",                                    302, 302, 405, 405, 405, 405, 405),
    row("GET", "/admin/password_change/",                           LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/password_change/done/",                      LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/jsi18n/",                                    LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/autocomplete/?app_label=verification&model_name=verificationcase&field_name=subject",
        LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/r/{user_type}/{subject_id}/",                LOGIN, LOGIN, 404, 404, 404, 404, 404),
    row("GET", "/admin/portal/",                                    LOGIN, LOGIN, 200, 200, 200, 200, 200),
    row("GET", "/admin/no-such-page/",                              LOGIN, LOGIN, 404, 404, 404, 404, 404),
    row("GET", "/admin/console/",                                   LOGIN, LOGIN, 200, 403, 403, 403, 403),
    row("GET", "/admin/console/case/{case}/",                       LOGIN, LOGIN, 200, 404, 404, 200, 200),
    row("POST", "/admin/console/case/{case}/",                      LOGIN, LOGIN, OK, 404, 404, 403, 403,
        body={"op": "cancel"}),
    row("GET", "/admin/policies/sensitiveaction/simulate/",         LOGIN, LOGIN, 403, 403, 403, 200, 200),
    row("GET", "/admin/policies/accessrequest/waiting/",            LOGIN, LOGIN, 403, 200, 200, 200, 200),
    row("POST", "/admin/policies/accessrequest/waiting/",           LOGIN, LOGIN, 403, OK, OK, OK, OK,
        body={"request": "{pending_request}", "decision": "deny"}),
    row("GET", "/admin/audit/auditevent/export/csv/",               LOGIN, LOGIN, 403, 403, 403, 200, 200),
    row("GET", "/admin/portal/user/{subject_id}/password/",         LOGIN, LOGIN, 403, 403, 403, 403, 403),
]
for model in ("risktier", "sensitiveaction", "riskrule"):  # their field-by-field history
    ADMIN_PAGES.append(
        row("GET", f"/admin/policies/{model}/{{policies_{model}}}/auditlog/",
            LOGIN, LOGIN, 403, 403, 403, 200, 200)
    )

# Each registered model's standard pages follow from who may view, add, change and
# delete it (ROLE_PERMISSIONS, narrowed by the ModelAdmin's has_*_permission).
SEC = "security_admin"
AUDIT = "auditor security_admin"
READERS = "manager approver auditor security_admin"
#                                      view              add        change            delete
ADMIN_MODELS: dict[str, tuple[str, str, str, str]] = {
    "auth.group":                       ("",              "",        "",               ""),
    "portal.user":                      ("agent " + READERS, SEC,    SEC,              ""),
    "portal.apitoken":                  (SEC,             "",        SEC,              ""),
    "audit.auditevent":                 (AUDIT,           "",        "",               ""),
    "auditlog.logentry":                (AUDIT,           "",        "",               ""),
    "verification.verificationcase":    (AUDIT,           "",        "",               ""),
    "verification.challenge":           (AUDIT,           "",        "",               ""),
    "verification.notice":              (SEC,             "",        "",               ""),
    "verification.subjecthold":         (SEC,             "",        SEC,              ""),
    "verification.smsdevice":           (SEC,             "",        "",               SEC),
    "verification.pushdevice":          (SEC,             "",        "",               SEC),
    "verification.authenticatordevice": (SEC,             "",        "",               SEC),
    "verification.backupcodedevice":    (SEC,             "",        "",               SEC),
    "otp_email.emaildevice":            (SEC,             "",        "",               SEC),
    "policies.risktier":                (AUDIT,           SEC,       SEC,              SEC),
    "policies.sensitiveaction":         (AUDIT,           SEC,       SEC,              SEC),
    "policies.riskrule":                (AUDIT,           SEC,       SEC,              SEC),
    "policies.entitlement":             (READERS,         SEC,       SEC,              SEC),
    "policies.accessrequest":           (READERS,         "manager", "",               ""),
    "policies.grant":                   (READERS,         "",        "approver " + SEC, ""),
}


# Their lists show a person without the review permission only their own rows; for
# someone with no access to the model at all, Django's history page says "does not exist".
SCOPED_MODELS = ("policies.accessrequest", "policies.grant")
ABSENT = "absent"  # redirected to the admin index: no such object for you


def _allowed(roles: str, status: int | str = 200, refused: int | str = 403) -> tuple[int | str, ...]:
    return (LOGIN, LOGIN, *(status if role in roles.split() else refused for role in ROLES[2:]))


def model_rows(label: str) -> list[Row]:
    """The standard admin pages of one model, opening its first object (`{app_model}`)."""
    view, add, change, delete = ADMIN_MODELS[label]
    app, model = label.split(".")
    base, first = f"/admin/{app}/{model}/", f"{{{app}_{model}}}"
    readers = f"{view} {change}"
    history_refused = ABSENT if label in SCOPED_MODELS else 403
    return [
        row("GET", base, *_allowed(readers)),
        row("GET", base + "add/", *_allowed(add)),
        row("GET", base + f"{first}/change/", *_allowed(readers)),
        row("POST", base + f"{first}/change/", *_allowed(change, OK)),
        row("GET", base + f"{first}/history/", *_allowed(readers, refused=history_refused)),
        row("GET", base + f"{first}/delete/", *_allowed(delete)),
        # Django's bare object URL only redirects to its change page, which checks.
        row("GET", base + f"{first}/", *_allowed("agent manager approver auditor security_admin", 302)),
    ]
