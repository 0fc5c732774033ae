"""The users feature's steps of the client flow (myapp/flow.py)."""

from myapp.steps import ADMIN, MEMBER, MEMBER_CREDENTIALS, READER, Step, sign_in

ACCOUNTS = [
    sign_in("Sign in as the admin", ADMIN, "{{adminEmail}}", "{{adminPassword}}"),
    Step(
        "Register a member",
        "post_users",
        201,
        body={
            "email": "{{memberEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Member",
        },
        keep={"memberId": "id"},
    ),
    Step(
        "Register the same email again: a conflict",
        "post_users",
        409,
        body={
            "email": "{{memberEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Member",
        },
    ),
    sign_in(
        "Sign in as the member",
        MEMBER,
        *MEMBER_CREDENTIALS,
        memberRefreshToken="refresh_token",
    ),
    Step(
        "A wrong password is refused",
        "post_tokens",
        401,
        body={"email": "{{memberEmail}}", "password": "not the password"},
    ),
    Step(
        "Refresh the member's tokens",
        "post_token_refresh",
        201,
        "memberRefresh",
        keep={"memberToken": "access_token", "memberRefreshToken": "refresh_token"},
    ),
    Step("Your profile", "get_me", 200, MEMBER, keep={"meEtag": "header:ETag"}),
    Step(
        "Your profile, unchanged since you read it",
        "get_me",
        304,
        MEMBER,
        headers={"If-None-Match": "{{meEtag}}"},
    ),
    Step(
        "Rename yourself",
        "patch_me",
        200,
        MEMBER,
        body={"name": "Flow Member Renamed"},
        headers={"If-Match": "{{meEtag}}"},
    ),
    Step(
        "Rename yourself from a stale copy: refused",
        "patch_me",
        412,
        MEMBER,
        body={"name": "Stale"},
        headers={"If-Match": "{{meEtag}}"},
    ),
    Step(
        "Your sessions",
        "get_my_sessions",
        200,
        MEMBER,
        keep={"memberSessionId": "items.0.id"},
    ),
    Step("A member may not list users", "get_users", 403, MEMBER),
    Step("Users (admin)", "get_users", 200, ADMIN),
    Step(
        "The member (admin)",
        "get_user",
        200,
        ADMIN,
        path={"user_id": "{{memberId}}"},
        keep={"memberEtag": "header:ETag"},
    ),
    Step(
        "Rename the member (admin)",
        "patch_user",
        200,
        ADMIN,
        path={"user_id": "{{memberId}}"},
        body={"name": "Flow Member"},
        headers={"If-Match": "{{memberEtag}}"},
    ),
]

SECOND_ACCOUNT = [
    Step(
        "Register a reader",
        "post_users",
        201,
        body={
            "email": "{{readerEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Reader",
        },
        keep={"readerId": "id"},
    ),
    sign_in("Sign in as the reader", READER, "{{readerEmail}}", "{{memberPassword}}"),
    sign_in("Sign in as the member again", MEMBER, *MEMBER_CREDENTIALS),
    Step(
        "Revoke the member's first session",
        "delete_my_session",
        204,
        MEMBER,
        path={"session_id": "{{memberSessionId}}"},
    ),
    Step(
        "Delete the reader (admin)",
        "delete_user",
        204,
        ADMIN,
        path={"user_id": "{{readerId}}"},
    ),
    Step("The reader's token no longer works", "get_me", 401, READER),
]

SIGN_OUT = [
    Step("Sign the member out", "delete_current_token", 204, MEMBER),
    Step("The member's token no longer works", "get_me", 401, MEMBER),
    Step("Sign the admin out", "delete_current_token", 204, ADMIN),
]
